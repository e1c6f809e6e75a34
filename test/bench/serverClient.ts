/** The built server as a child process over a real JSON-RPC connection (node-ipc), for benchmarks. */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createMessageConnection, IPCMessageReader, IPCMessageWriter, type MessageConnection } from 'vscode-jsonrpc/node';
import type { StackSpec } from '../../server/src/protocol';

export const SERVER_JS = path.resolve(__dirname, '../../server/src/server.js');

export interface ServerClient {
  conn: MessageConnection;
  child: ChildProcess;
  rssMiB(): number;
  stop(): Promise<void>;
}

export async function startServer(overlays: Record<string, StackSpec>): Promise<ServerClient> {
  // node-ipc, the transport the extension uses (vscode-languageclient TransportKind.ipc).
  // BENCH_SERVER_ARGS passes node flags to the server, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
  const child = spawn(process.execPath, [...(process.env.BENCH_SERVER_ARGS ? process.env.BENCH_SERVER_ARGS.split(" ") : []), SERVER_JS, '--node-ipc'], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const conn = createMessageConnection(new IPCMessageReader(child), new IPCMessageWriter(child));
  conn.onNotification(() => undefined);
  conn.listen();
  await conn.sendRequest('initialize', { processId: process.pid, rootUri: null, capabilities: {}, initializationOptions: { overlays } });
  await conn.sendNotification('initialized', {});
  // Measure a settled server: the watchers' initial scans done (they share the event loop).
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
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
    stop: async () => {
      try { await conn.sendRequest('shutdown'); await conn.sendNotification('exit'); } catch { /* gone */ }
      conn.dispose();
      if (child.exitCode === null) {
        await new Promise<void>((resolve) => { const t = setTimeout(() => { child.kill('SIGKILL'); resolve(); }, 2000); child.once('exit', () => { clearTimeout(t); resolve(); }); });
      }
    },
  };
}

/** Recursive listing with types through the server: one overlay/readDirectory per directory, `parallel` in flight. */
export async function walkServer(conn: MessageConnection, name: string, parallel = 1): Promise<number> {
  let count = 0;
  const queue = ['/'];
  let active = 0;
  await new Promise<void>((resolve, reject) => {
    const step = (): void => {
      while (active < parallel && queue.length > 0) {
        const dir = queue.pop() as string;
        active++;
        conn.sendRequest<[string, number][]>('overlay/readDirectory', { name, path: dir }).then((entries) => {
          for (const [n, t] of entries) {
            count++;
            if (t & 2) queue.push((dir === '/' ? '' : dir) + '/' + n);
          }
          active--;
          step();
        }, reject);
      }
      if (active === 0 && queue.length === 0) resolve();
    };
    step();
  });
  return count;
}

/** Node walking a real tree with `parallel` readdirs in flight. */
export async function walkRealParallel(root: string, parallel = 1): Promise<number> {
  let count = 0;
  const queue = [root];
  let active = 0;
  await new Promise<void>((resolve, reject) => {
    const step = (): void => {
      while (active < parallel && queue.length > 0) {
        const dir = queue.pop() as string;
        active++;
        fs.promises.readdir(dir, { withFileTypes: true }).then((entries) => {
          for (const e of entries) { count++; if (e.isDirectory()) queue.push(dir + '/' + e.name); }
          active--;
          step();
        }, reject);
      }
      if (active === 0 && queue.length === 0) resolve();
    };
    step();
  });
  return count;
}
