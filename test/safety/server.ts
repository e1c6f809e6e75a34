/** Start the built LSP server (out/server/src/server.js --stdio) and talk to it over vscode-jsonrpc. */
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { createMessageConnection, ResponseError, StreamMessageReader, StreamMessageWriter, type MessageConnection } from 'vscode-jsonrpc/node';
import type { StackSpec } from '../../shared/src/protocol';

export const SERVER = path.resolve(__dirname, '../../server/src/server.js');

export interface Server {
  child: ChildProcess;
  conn: MessageConnection;
  logs: string[];
  exited: Promise<number | null>;
  alive(): boolean;
  stop(): Promise<void>;
}

/** `execArgv`: node options for the server process; `uid`/`gid`: run it as that user. */
export interface ServerOptions {
  execArgv?: string[];
  uid?: number;
  gid?: number;
}

export async function startServer(overlays: Record<string, StackSpec>, options: ServerOptions = {}): Promise<Server> {
  const { execArgv = [], ...user } = options;
  const child = spawn(process.execPath, [...execArgv, SERVER, '--stdio'], { stdio: ['pipe', 'pipe', 'pipe'], ...user });
  const logs: string[] = [];
  child.stderr!.on('data', (d: Buffer) => logs.push(d.toString()));
  const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
  const conn = createMessageConnection(new StreamMessageReader(child.stdout!), new StreamMessageWriter(child.stdin!));
  conn.onNotification('window/logMessage', (p: { message: string }) => {
    logs.push(p.message);
  });
  conn.onNotification(() => undefined);
  conn.onError(() => undefined);
  conn.listen();
  // The server exits once kill(processId, 0) fails, which it does with EPERM for a server
  // running as another user: no parent watch then (the pipes still end it with this process).
  const processId = user.uid !== undefined && user.uid !== process.getuid?.() ? null : process.pid;
  await conn.sendRequest('initialize', { processId, rootUri: null, capabilities: {}, initializationOptions: { overlays } });
  await conn.sendNotification('initialized', {});
  return {
    child,
    conn,
    logs,
    exited,
    alive: () => child.exitCode === null && child.signalCode === null,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        try {
          await conn.sendRequest('shutdown');
          await conn.sendNotification('exit');
        } catch {
          /* gone */
        }
        const t = setTimeout(() => child.kill('SIGKILL'), 3000);
        await exited;
        clearTimeout(t);
      }
      conn.dispose();
    },
  };
}

/** The outcome of a request: ok + result, or the error's JSON-RPC code, Node code and message. */
export async function outcome(
  conn: MessageConnection,
  method: string,
  params: unknown,
): Promise<{ ok: true; result: unknown } | { ok: false; rpc: number; code?: string; message: string }> {
  try {
    return { ok: true, result: await conn.sendRequest(method, params) };
  } catch (err) {
    if (err instanceof ResponseError) return { ok: false, rpc: err.code, code: (err.data as { code?: string } | undefined)?.code, message: err.message };
    throw err;
  }
}
