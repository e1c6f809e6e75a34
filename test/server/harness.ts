/** Start the built server as a child process and speak to it over a real JSON-RPC connection. */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  createMessageConnection,
  IPCMessageReader,
  IPCMessageWriter,
  StreamMessageReader,
  StreamMessageWriter,
  type MessageConnection,
  ResponseError,
} from 'vscode-jsonrpc/node';
import * as P from '../../shared/src/protocol';

export const SERVER = path.resolve(__dirname, '../../server/src/server.js');

export interface Started {
  child: ChildProcess;
  conn: MessageConnection;
  changes: P.DidChangeFile.Change[];
  copyUps: P.DidCopyUp.Params[];
  stderr: string[];
  logs: string[];
  mountChanges: P.DidChangeMount.Params[];
  exited: Promise<number | null>;
  stop(): Promise<void>;
}

/**
 * `env`: added to the server's environment; `processId`: what initialize names as the server's parent (default this
 * process); `uid`/`gid`: run it as that user (root only); `watchLowerLayers`: initializationOptions.watchLowerLayers.
 */
export interface StartOptions {
  env?: NodeJS.ProcessEnv;
  processId?: number | null;
  uid?: number;
  gid?: number;
  watchLowerLayers?: P.WatchLowerLayers;
}

export async function startServer(
  overlays: Record<string, P.StackSpec> = {},
  transport: '--stdio' | '--node-ipc' = '--stdio',
  options: StartOptions = {},
): Promise<Started> {
  const child = spawn(process.execPath, [SERVER, transport], {
    stdio: transport === '--stdio' ? ['pipe', 'pipe', 'pipe'] : ['pipe', 'pipe', 'pipe', 'ipc'],
    env: { ...process.env, ...options.env },
    uid: options.uid,
    gid: options.gid,
  });
  const stderr: string[] = [];
  child.stderr?.on('data', (d: Buffer) => stderr.push(d.toString()));
  const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
  const conn =
    transport === '--stdio'
      ? createMessageConnection(new StreamMessageReader(child.stdout!), new StreamMessageWriter(child.stdin!))
      : createMessageConnection(new IPCMessageReader(child), new IPCMessageWriter(child));
  const changes: P.DidChangeFile.Change[] = [];
  const copyUps: P.DidCopyUp.Params[] = [];
  const logs: string[] = [];
  const mountChanges: P.DidChangeMount.Params[] = [];
  conn.onNotification(P.DidChangeFile.type, (p) => {
    changes.push(...p.changes);
  });
  conn.onNotification(P.DidCopyUp.type, (p) => {
    copyUps.push(p);
  });
  conn.onNotification('window/logMessage', (p: { message: string }) => {
    logs.push(p.message);
  });
  conn.onNotification(P.DidChangeMount.type, (p) => {
    mountChanges.push(p);
  });
  conn.listen();
  // A server of another user cannot kill(processId, 0) this process (EPERM) and would exit: no parent watch then.
  const processId = options.processId !== undefined ? options.processId : options.uid !== undefined && options.uid !== process.getuid?.() ? null : process.pid;
  await conn.sendRequest('initialize', {
    processId,
    rootUri: null,
    capabilities: {},
    initializationOptions: { overlays, watchLowerLayers: options.watchLowerLayers },
  });
  await conn.sendNotification('initialized', {});
  let stopped = false;
  return {
    child,
    conn,
    changes,
    copyUps,
    stderr,
    logs,
    mountChanges,
    exited,
    async stop() {
      if (stopped) return;
      stopped = true;
      if (child.exitCode === null) {
        try {
          await conn.sendRequest('shutdown');
          await conn.sendNotification('exit');
        } catch {
          /* already gone */
        }
        const t = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(t);
      }
      conn.dispose();
    },
  };
}

/**
 * A copy-up notification without its count of processes the server could not inspect (which
 * depends on the machine), checked to be there.
 */
export function copyUpSeen(c: P.DidCopyUp.Params | undefined): Omit<P.DidCopyUp.Params, 'uninspectable'> | undefined {
  if (!c) return c;
  const { uninspectable, ...rest } = c;
  if (typeof uninspectable !== 'number') throw new Error(`the copy-up of ${c.path} came without a count of uninspectable processes`);
  return rest;
}

/** Wait for all watchers of the server to finish their initial scan. */
export async function watchReady(s: Started, timeoutMs = 10000): Promise<void> {
  await until(async () => (await s.conn.sendRequest(P.ListOverlays.type)).every((o) => o.watchReady), timeoutMs, 'watchers ready');
}

/** Poll `cond` until true or the deadline passes. */
export async function until(cond: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** The Node code a failed request carries. */
export async function errorCode(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ResponseError) {
      if (err.code !== P.OVERLAY_ERROR) return `jsonrpc ${err.code}: ${err.message}`;
      return (err.data as P.OverlayErrorData).code;
    }
    throw err;
  }
  throw new Error('request did not fail');
}

export interface Stack {
  root: string;
  lower: string[];
  upper: string;
  work: string;
  spec: P.StackSpec;
  cleanup(): void;
}

/** A temp stack: `layers` maps lower index → { relative path: content | null (directory) }. */
export function makeStack(lowerFiles: Record<string, string | null>[], upperFiles: Record<string, string | null> = {}): Stack {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ovl-srv-'));
  const lower = lowerFiles.map((_, i) => path.join(root, `l${i}`));
  const upper = path.join(root, 'upper');
  const work = path.join(root, 'work');
  const fill = (dir: string, files: Record<string, string | null>) => {
    fs.mkdirSync(dir, { recursive: true });
    for (const [rel, content] of Object.entries(files)) {
      const p = path.join(dir, rel);
      if (content === null) fs.mkdirSync(p, { recursive: true });
      else {
        fs.mkdirSync(path.dirname(p), { recursive: true });
        fs.writeFileSync(p, content);
      }
    }
  };
  lowerFiles.forEach((files, i) => fill(lower[i], files));
  fill(upper, upperFiles);
  fs.mkdirSync(work);
  return { root, lower, upper, work, spec: { lower, upper, work }, cleanup: () => fs.rmSync(root, { recursive: true, force: true }) };
}

export const b64 = (s: string | Uint8Array): string => Buffer.from(s).toString('base64');

/** How overlay `name`'s layers are watched now (overlay/watching). */
export function watching(s: Started, name: string): Promise<P.Watching.Layer[]> {
  return s.conn.sendRequest(P.Watching.type, { name });
}

/** Wait until the server watches real directory `dir` (on its own, or below a root watched recursively). */
export async function watchesDir(s: Started, name: string, dir: string, timeoutMs = 5000): Promise<void> {
  await until(
    async () => (await watching(s, name)).some((l) => l.dirs.includes(dir) || l.roots.some((r) => dir === r || dir.startsWith(r + '/'))),
    timeoutMs,
    `a watch on ${dir}`,
  );
}
