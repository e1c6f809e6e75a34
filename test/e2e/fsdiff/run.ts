/**
 * Running one case's operation through `workspace.fs` (or a WorkspaceEdit) on a root URI, and
 * what came of it, as text that compares across providers: the result (stat type and size,
 * listing, content hash) or the `vscode.FileSystemError` code. Also the tree of a directory
 * as `workspace.fs` shows it, and the FIFO partners that keep the disk provider's open(2) of
 * a FIFO from blocking the suite.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as vscode from 'vscode';
import type { Case, Op } from './cases';
import { fifosUnder } from './layers';

/** An operation that has not answered after this long has hung (a FIFO opened with no partner, a deadlock). */
export const OP_DEADLINE_MS = 15_000;

export interface Outcome {
  /** What is compared: `ok …` or `error <code>`. */
  readonly text: string;
  /** The error's message (shown, not compared). */
  readonly message?: string;
}

export function uriOf(root: vscode.Uri, caseDir: string, rel: string): vscode.Uri {
  const parts = [caseDir, rel].filter(Boolean).join('/');
  return parts ? vscode.Uri.joinPath(root, ...parts.split('/')) : root;
}

export function typeName(t: vscode.FileType): string {
  const base = t & ~vscode.FileType.SymbolicLink;
  const name =
    base === vscode.FileType.File ? 'File' : base === vscode.FileType.Directory ? 'Directory' : base === vscode.FileType.Unknown ? 'Unknown' : `type${base}`;
  return t & vscode.FileType.SymbolicLink ? `SymbolicLink|${name}` : name;
}

/** Provider codes (VS Code 1.139 spells them Entry…, earlier File…) that say what FileSystemError.code says. */
const SAME_AS_CODE: Record<string, string> = {
  EntryNotFound: 'FileNotFound',
  EntryExists: 'FileExists',
  EntryNotADirectory: 'FileNotADirectory',
  EntryIsADirectory: 'FileIsADirectory',
};

/**
 * The code VS Code sees: `FileSystemError.code`, and after a slash the provider's own code
 * when it says more (the disk provider's write-locked error arrives as code Unknown, named
 * `EntryWriteLocked (FileSystemError)`; VS Code's file service reads the name).
 */
export function errorText(err: unknown): string {
  if (!(err instanceof vscode.FileSystemError)) return `non-FileSystemError ${(err as Error)?.name ?? typeof err}`;
  const inner = /^(\w+) \(FileSystemError\)/.exec(err.name)?.[1];
  return inner && inner !== err.code && SAME_AS_CODE[inner] !== err.code ? `${err.code}/${inner}` : err.code;
}

const hash = (b: Uint8Array) => createHash('sha1').update(b).digest('hex').slice(0, 12);

async function call(root: vscode.Uri, c: Case): Promise<string> {
  const op: Op = c.op;
  const fsApi = vscode.workspace.fs;
  switch (op.op) {
    case 'stat': {
      const st = await fsApi.stat(uriOf(root, c.dir, op.path));
      return `${typeName(st.type)} size=${st.size}${st.permissions ? ` permissions=${st.permissions}` : ''}`;
    }
    case 'readDirectory': {
      const entries = await fsApi.readDirectory(uriOf(root, c.dir, op.path));
      return `[${entries
        .map(([n, t]) => `${n}:${typeName(t)}`)
        .sort()
        .join(', ')}]`;
    }
    case 'readFile': {
      const data = await fsApi.readFile(uriOf(root, c.dir, op.path));
      return `${data.byteLength} bytes ${hash(data)}`;
    }
    case 'writeFile':
      await fsApi.writeFile(uriOf(root, c.dir, op.path), Buffer.from(op.data));
      return '';
    case 'createDirectory':
      await fsApi.createDirectory(uriOf(root, c.dir, op.path));
      return '';
    case 'delete': {
      const options: { recursive?: boolean; useTrash?: boolean } = {};
      if (op.recursive !== undefined) options.recursive = op.recursive;
      if (op.useTrash !== undefined) options.useTrash = op.useTrash;
      await fsApi.delete(uriOf(root, c.dir, op.path), options);
      return '';
    }
    case 'rename':
      await fsApi.rename(uriOf(root, c.dir, op.from), uriOf(root, c.dir, op.to), { overwrite: op.overwrite });
      return '';
    case 'copy':
      await fsApi.copy(uriOf(root, c.dir, op.from), uriOf(root, c.dir, op.to), { overwrite: op.overwrite });
      return '';
    case 'createFile': {
      const edit = new vscode.WorkspaceEdit();
      edit.createFile(uriOf(root, c.dir, op.path), { overwrite: op.overwrite, ignoreIfExists: op.ignoreIfExists, contents: Buffer.from(op.data) });
      return `applied=${await vscode.workspace.applyEdit(edit)}`;
    }
  }
}

/**
 * Runs the case's operation on `root`. `around` wraps the call (FIFO partners); an
 * operation that does not answer within OP_DEADLINE_MS is `error TIMEOUT`, and `onHang`
 * is asked to unblock it.
 */
export async function perform(root: vscode.Uri, c: Case, around?: <T>(fn: () => Promise<T>) => Promise<T>, onHang?: () => void): Promise<Outcome> {
  const run = async (): Promise<Outcome> => {
    try {
      const value = await call(root, c);
      return { text: value ? `ok ${value}` : 'ok' };
    } catch (err) {
      return { text: `error ${errorText(err)}`, message: err instanceof Error ? err.message : String(err) };
    }
  };
  const op = around ? around(run) : run();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<Outcome>((resolve) => {
    timer = setTimeout(() => resolve({ text: 'error TIMEOUT', message: `no answer within ${OP_DEADLINE_MS} ms` }), OP_DEADLINE_MS);
  });
  const outcome = await Promise.race([op, deadline]);
  clearTimeout(timer);
  if (outcome.text === 'error TIMEOUT') onHang?.();
  return outcome;
}

/**
 * The tree below `base` as `workspace.fs` shows it, one line per entry: the type from the
 * listing, stat's type and size (not for directories: their size is the filesystem's
 * bookkeeping), the content hash of files. Symlinked directories are not entered.
 */
export async function walk(base: vscode.Uri): Promise<string[]> {
  const lines: string[] = [];
  const fsApi = vscode.workspace.fs;
  const attempt = async <T>(fn: () => Thenable<T>): Promise<T | string> => {
    try {
      return await fn();
    } catch (err) {
      return `error ${errorText(err)}`;
    }
  };
  // Every call is a round trip to the workbench (workspace.fs asks it to activate the
  // provider each time): the entries of a directory are asked for all at once.
  const visit = async (uri: vscode.Uri, rel: string): Promise<void> => {
    const entries = await attempt(() => fsApi.readDirectory(uri));
    if (typeof entries === 'string') {
      lines.push(`${rel || '.'}/ ${entries}`);
      return;
    }
    await Promise.all(
      entries.map(async ([name, type]) => {
        const child = vscode.Uri.joinPath(uri, name);
        const r = rel ? `${rel}/${name}` : name;
        if (type === vscode.FileType.Directory) {
          lines.push(`${r} ${typeName(type)}`);
          return visit(child, r);
        }
        const [st, data] = await Promise.all([
          attempt(() => fsApi.stat(child)),
          type & vscode.FileType.File ? attempt(() => fsApi.readFile(child)) : undefined,
        ]);
        let line = `${r} ${typeName(type)}`;
        line += typeof st === 'string' ? ` stat:${st}` : ` stat:${typeName(st.type)}/${st.type & vscode.FileType.Directory ? '-' : st.size}`;
        if (data !== undefined) line += typeof data === 'string' ? ` read:${data}` : ` ${hash(data)}`;
        lines.push(line);
      }),
    );
  };
  const top = await attempt(() => fsApi.stat(base));
  if (typeof top === 'string') return [`. ${top}`];
  lines.push(`. ${typeName(top.type)}`);
  if (top.type & vscode.FileType.Directory) await visit(base, '');
  return lines.sort();
}

/** Which end of a FIFO the operation opens on the disk side, and which FIFOs (real paths of the reference copy). */
export function fifosOpenedBy(c: Case, refRoot: string): { end: 'read' | 'write'; fifos: string[] } | undefined {
  const real = (rel: string) => [refRoot, c.dir, rel].filter(Boolean).join('/');
  const statOf = (p: string) => {
    try {
      return fs.statSync(p);
    } catch {
      return undefined;
    }
  };
  const op = c.op;
  if (op.op === 'readFile' || op.op === 'copy') {
    const p = real('from' in op ? op.from : op.path);
    const st = statOf(p);
    const fifos = st?.isFIFO() ? [fs.realpathSync(p)] : st?.isDirectory() ? fifosUnder(p) : [];
    return fifos.length ? { end: 'read', fifos } : undefined;
  }
  if (op.op === 'writeFile' || op.op === 'createFile') {
    const p = real(op.path);
    return statOf(p)?.isFIFO() ? { end: 'write', fifos: [fs.realpathSync(p)] } : undefined;
  }
  return undefined;
}

/**
 * Runs `fn` while the other end of each FIFO is opened: a writer that closes at once (the
 * operation reads an empty stream), or a reader that drains it. open(2) of a FIFO blocks until
 * both ends are there, so without a partner the disk provider would wait forever — which is
 * what it does for a user. A partner the operation never met is released by opening the end
 * it waits for without blocking.
 */
export async function withFifoPartners<T>(plan: { end: 'read' | 'write'; fifos: string[] }, fn: () => Promise<T>): Promise<T> {
  const partners = plan.fifos.map((fifo) => {
    const state = { fifo, opened: false, done: Promise.resolve() };
    state.done = (async () => {
      const fh = await fs.promises.open(fifo, plan.end === 'read' ? 'w' : 'r');
      state.opened = true;
      if (plan.end === 'write') {
        const buf = Buffer.alloc(65_536);
        while ((await fh.read(buf, 0, buf.length, null)).bytesRead > 0);
      }
      await fh.close();
    })();
    return state;
  });
  try {
    return await fn();
  } finally {
    for (const p of partners) {
      if (!p.opened) releaseFifo(p.fifo, plan.end === 'read' ? fs.constants.O_RDONLY : fs.constants.O_WRONLY);
      let timer: NodeJS.Timeout | undefined;
      const stuck = new Promise<void>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`the FIFO partner on ${p.fifo} is still waiting after ${OP_DEADLINE_MS} ms`)), OP_DEADLINE_MS);
      });
      await Promise.race([p.done.catch(() => undefined), stuck]).finally(() => clearTimeout(timer));
    }
  }
}

/** Wakes whoever waits in open(2) on `fifo`: opens (without blocking) the end it waits for, and closes it. */
export function releaseFifo(fifo: string, flags = fs.constants.O_RDWR): void {
  try {
    fs.closeSync(fs.openSync(fifo, flags | fs.constants.O_NONBLOCK));
  } catch {
    // nobody waits (ENXIO for a writer without readers): nothing to release
  }
}
