/** The built server as a child process over a real JSON-RPC connection (node-ipc), for benchmarks. */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createMessageConnection, IPCMessageReader, IPCMessageWriter, type MessageConnection } from 'vscode-jsonrpc/node';
import { ReadDirectories, type StackSpec } from '../../shared/src/protocol';
import { ReadAhead } from '../../client/src/readAhead';
import { SERVER_NODE_FLAGS } from '../../shared/src/serverFlags';

export const SERVER_JS = path.resolve(__dirname, '../../server/src/server.js');

export interface ServerClient {
  conn: MessageConnection;
  child: ChildProcess;
  rssMiB(): number;
  /** With `heapEveryMs`: the probe's last sample (heapProbe.ts), live heap and RSS in MiB. */
  heap(): { t: number; liveMiB: number; rssMiB: number } | undefined;
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Wait for the watchers' initial scans (default true). */
  settle?: boolean;
  /** Preload heapProbe.ts, sampling (after a full GC) this often. */
  heapEveryMs?: number;
  /** Added to the server's environment. */
  env?: NodeJS.ProcessEnv;
}

export async function startServer(overlays: Record<string, StackSpec>, opts: StartOptions = {}): Promise<ServerClient> {
  // node-ipc, the transport the extension uses (vscode-languageclient TransportKind.ipc), with its Node flags.
  // BENCH_SERVER_ARGS passes node flags to the server, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
  const heapFile = opts.heapEveryMs ? path.join(os.tmpdir(), `ovlws-heap-${process.pid}-${Date.now()}.json`) : undefined;
  const probe = heapFile ? ['--expose-gc', '--require', path.join(__dirname, 'heapProbe.js')] : [];
  const heapEnv = heapFile ? { BENCH_HEAP_FILE: heapFile, BENCH_HEAP_MS: String(opts.heapEveryMs) } : {};
  const child = spawn(
    process.execPath,
    [...SERVER_NODE_FLAGS, ...probe, ...(process.env.BENCH_SERVER_ARGS ? process.env.BENCH_SERVER_ARGS.split(' ') : []), SERVER_JS, '--node-ipc'],
    {
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      env: { ...process.env, ...opts.env, ...heapEnv },
    },
  );
  const conn = createMessageConnection(new IPCMessageReader(child), new IPCMessageWriter(child));
  conn.onNotification(() => undefined);
  conn.listen();
  await conn.sendRequest('initialize', { processId: process.pid, rootUri: null, capabilities: {}, initializationOptions: { overlays } });
  await conn.sendNotification('initialized', {});
  // Measure a settled server: the watchers' initial scans done (they share the event loop).
  const deadline = Date.now() + 120_000;
  while (opts.settle !== false && Date.now() < deadline) {
    const list = await conn.sendRequest<{ watchReady?: boolean }[]>('overlay/list');
    if (list.every((o) => o.watchReady)) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  return {
    conn,
    child,
    rssMiB: () => {
      const status = fs.readFileSync(`/proc/${child.pid}/status`, 'utf8');
      return Number((status.match(/VmRSS:\s+(\d+)/) ?? [])[1] ?? 0) / 1024;
    },
    heap: () => {
      try {
        const m = JSON.parse(fs.readFileSync(heapFile ?? '', 'utf8')) as { t: number; heapUsed: number; rss: number };
        return { t: m.t, liveMiB: m.heapUsed / 2 ** 20, rssMiB: m.rss / 2 ** 20 };
      } catch {
        return undefined;
      }
    },
    stop: async () => {
      if (heapFile) fs.rmSync(heapFile, { force: true });
      try {
        await conn.sendRequest('shutdown');
        await conn.sendNotification('exit');
      } catch {
        /* gone */
      }
      conn.dispose();
      if (child.exitCode === null) {
        await new Promise<void>((resolve) => {
          const t = setTimeout(() => {
            child.kill('SIGKILL');
            resolve();
          }, 2000);
          child.once('exit', () => {
            clearTimeout(t);
            resolve();
          });
        });
      }
    },
  };
}

/**
 * Walk a tree with `parallel` listings in flight; `list` lists one directory, pushes its
 * subdirectories onto `dirs` and returns how many entries it had. Both sides of a
 * listing figure go through this same loop.
 */
function walkParallel(root: string, parallel: number, list: (dir: string, dirs: string[]) => Promise<number>): Promise<number> {
  let count = 0;
  let active = 0;
  const queue = [root];
  return new Promise<number>((resolve, reject) => {
    const step = (): void => {
      while (active < parallel && queue.length > 0) {
        const dir = queue.pop() as string;
        active++;
        list(dir, queue).then((n) => {
          count += n;
          active--;
          step();
        }, reject);
      }
      if (active === 0 && queue.length === 0) resolve(count);
    };
    step();
  });
}

/** Recursive listing with types through the server: one overlay/readDirectory per directory, `parallel` in flight. */
export function walkServer(conn: MessageConnection, name: string, parallel = 1): Promise<number> {
  return walkParallel('/', parallel, async (dir, dirs) => {
    const entries = await conn.sendRequest<[string, number][]>('overlay/readDirectory', { name, path: dir });
    for (const [n, t] of entries) if (t & 2) dirs.push((dir === '/' ? '' : dir) + '/' + n);
    return entries.length;
  });
}

/**
 * Recursive listing with types as the extension lists (fsProvider.ts): through the
 * client's read-ahead (client/src/readAhead.ts), which asks overlay/readDirectories. A
 * fresh read-ahead per walk: nothing is left over from the walk before.
 */
export function walkClient(conn: MessageConnection, name: string, parallel = 1): Promise<number> {
  const ra = new ReadAhead((p) => conn.sendRequest<ReadDirectories.Listing[]>(ReadDirectories.method, p));
  return walkParallel('/', parallel, async (dir, dirs) => {
    const entries = await ra.readDirectory(name, dir);
    for (const [n, t] of entries) if (t & 2) dirs.push((dir === '/' ? '' : dir) + '/' + n);
    return entries.length;
  });
}

/** Node walking a real tree with types, `parallel` readdirs in flight. */
export function walkRealParallel(root: string, parallel = 1): Promise<number> {
  return walkParallel(root, parallel, async (dir, dirs) => {
    const entries = await fs.promises.readdir(dir, { withFileTypes: true });
    for (const e of entries) if (e.isDirectory()) dirs.push(dir + '/' + e.name);
    return entries.length;
  });
}
