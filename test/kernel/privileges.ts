/**
 * Writes against the kernel's security rules, on small fixed stacks: file capabilities,
 * setuid/setgid files, hard links, a rename onto an ancestor. Each case runs its operations
 * on a kernel mount (`mount -t overlay`, the reference) and, on copies of the same layers,
 * through each route of the product: the engine, the server over JSON-RPC, the CLI, and the
 * server and the CLI writing through a live kernel mount of the stack. Per operation the
 * outcome must match; after them the raw upper directories (modes, owners, link counts,
 * capabilities, user xattrs, contents) and the merged views.
 *
 * The writer is root (test/kernel/privileges.test.ts) or uid/gid 65534 (test/safety/
 * writerPrivileges.test.ts): the kernel reference then runs as 65534 too, and so do the
 * engine (privilegeChild.ts), the server and the CLI.
 *
 * Not every route can express every operation: the protocol has no chmod and truncates only
 * to 0 (open with truncate); the CLI has no handles. A case runs on the routes that express
 * all of its operations, and names the others it leaves out and why.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ResponseError } from 'vscode-jsonrpc/node';
import * as P from '../../shared/src/protocol';
import { Overlay, type StackSpec } from '../../server/src/overlay';
import { startServer, type Server } from '../safety/server';
import { isMounted, kernelOverlayUnavailable, mountKernel, run, unmount, type OverlayDirs } from './shell';
import { dumpEngine, dumpLayer, dumpMount } from './tree';

/** One operation, on an overlay path. */
export type WOp =
  /** A whole-file write: open(O_TRUNC) and write, like `printf > f` or a save. */
  | { kind: 'write'; path: string; data: string }
  | { kind: 'append'; path: string; data: string }
  | { kind: 'truncate'; path: string; size: number }
  /** Open for writing (a handle), write `data` at 0 if given, close. */
  | { kind: 'open'; path: string; data?: string; truncate?: boolean }
  | { kind: 'chmod'; path: string; mode: number }
  | { kind: 'rename'; src: string; dst: string };

export type Route = 'engine' | 'server' | 'cli' | 'server-live' | 'cli-live';
export const ROUTES: readonly Route[] = ['engine', 'server', 'cli', 'server-live', 'cli-live'];

/** An operation's outcome: ok, or the Node error code. */
export interface Result {
  ok: boolean;
  code?: string;
}

/** A layer entry. Owner defaults to the writer's; parents are made as directories 0755. */
export interface Entry {
  path: string;
  data?: string;
  dir?: boolean;
  /** Default 0644 for files, 0755 for directories. */
  mode?: number;
  owner?: [number, number];
  /** Capabilities as setcap(8) takes them, e.g. 'cap_net_raw+ep'. */
  cap?: string;
  xattrs?: Record<string, string>;
  /** A hard link to this earlier entry of the same layer. */
  link?: string;
}

export interface Case {
  name: string;
  /** Lower layers, top first. */
  lower: Entry[][];
  upper?: Entry[];
  ops: WOp[];
  /** Routes left out although they express the operations, and why. */
  without?: Partial<Record<Route, string>>;
}

/** The user who writes; undefined = root, in this process. */
export type Writer = { uid: number; gid: number } | undefined;

const BIN = path.resolve(__dirname, '../../../bin/overlayws.js');
const CHILD = path.join(__dirname, 'privilegeChild.js');

/** Why a route cannot run a case (an operation it cannot express, or the case's own reason), or undefined. */
export function leftOut(route: Route, c: Case): string | undefined {
  if (c.without?.[route]) return c.without[route];
  for (const op of c.ops) {
    if (op.kind === 'chmod' && route.startsWith('server')) return 'the protocol has no chmod';
    if (op.kind === 'truncate' && op.size !== 0 && route.startsWith('server')) return 'the protocol truncates only to 0 (open with truncate)';
    if (op.kind === 'open' && route.startsWith('cli')) return 'the CLI has no handles';
  }
  return undefined;
}

// ---------------------------------------------------------------- layers

function buildLayer(dir: string, entries: Entry[], owner: [number, number]): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.chownSync(dir, ...owner);
  const parents = (rel: string): void => {
    const parts = rel.split('/').slice(0, -1);
    for (let i = 1; i <= parts.length; i++) {
      const d = path.join(dir, ...parts.slice(0, i));
      if (fs.existsSync(d)) continue;
      fs.mkdirSync(d, { mode: 0o755 });
      fs.chownSync(d, ...owner);
      fs.chmodSync(d, 0o755);
    }
  };
  for (const e of entries) {
    const p = path.join(dir, e.path);
    parents(e.path);
    if (e.link !== undefined) {
      fs.linkSync(path.join(dir, e.link), p);
      continue;
    }
    if (e.dir) fs.mkdirSync(p);
    else fs.writeFileSync(p, e.data ?? '');
    // chown clears setuid, setgid and capabilities: owner first, then mode, then the rest.
    fs.lchownSync(p, ...(e.owner ?? owner));
    fs.chmodSync(p, e.mode ?? (e.dir ? 0o755 : 0o644));
    for (const [name, value] of Object.entries(e.xattrs ?? {})) run('setfattr', ['-n', name, '-v', value, p]);
    if (e.cap) run('setcap', [e.cap, p]);
  }
}

/** The layers of `c` under `root` (L0.., U, W, M), everything owned by the writer unless an entry says otherwise. */
export function buildCase(c: Case, root: string, writer: Writer): OverlayDirs {
  const owner: [number, number] = writer ? [writer.uid, writer.gid] : [0, 0];
  fs.mkdirSync(root, { recursive: true, mode: 0o755 });
  fs.chmodSync(root, 0o755);
  c.lower.forEach((entries, i) => buildLayer(path.join(root, `L${i}`), entries, owner));
  buildLayer(path.join(root, 'U'), c.upper ?? [], owner);
  for (const d of ['W', 'M']) {
    fs.mkdirSync(path.join(root, d));
    fs.chownSync(path.join(root, d), ...owner);
  }
  return dirsOf(root, c.lower.length);
}

export function dirsOf(root: string, nLower: number): OverlayDirs {
  return {
    lower: Array.from({ length: nLower }, (_, i) => path.join(root, `L${i}`)),
    upper: path.join(root, 'U'),
    work: path.join(root, 'W'),
    merged: path.join(root, 'M'),
  };
}

/** An exact copy of a built case (owners, modes, capabilities, xattrs, hard links: cp -a). */
export function copyCase(from: string, to: string, nLower: number): OverlayDirs {
  run('cp', ['-a', from, to]);
  return dirsOf(to, nLower);
}

const specOf = (d: OverlayDirs): StackSpec => ({ lower: d.lower, upper: d.upper, work: d.work, whiteouts: 'kernel' });

// ---------------------------------------------------------------- operations as plain syscalls and through the engine

function codeOf(err: unknown): Result {
  const code = (err as { code?: unknown })?.code;
  return { ok: false, code: typeof code === 'string' ? code : `THROW ${String(err)}` };
}

/** The operations as plain syscalls under `root` (a kernel mount's merged directory). */
export function applyFs(root: string, ops: WOp[]): Result[] {
  const at = (p: string): string => path.join(root, p);
  return ops.map((op) => {
    try {
      switch (op.kind) {
        case 'write':
          fs.writeFileSync(at(op.path), op.data);
          break;
        case 'append':
          fs.appendFileSync(at(op.path), op.data);
          break;
        case 'truncate':
          fs.truncateSync(at(op.path), op.size);
          break;
        case 'open': {
          const fd = fs.openSync(at(op.path), fs.constants.O_WRONLY | (op.truncate ? fs.constants.O_TRUNC : 0));
          try {
            if (op.data !== undefined) fs.writeSync(fd, op.data, 0);
          } finally {
            fs.closeSync(fd);
          }
          break;
        }
        case 'chmod':
          fs.chmodSync(at(op.path), op.mode);
          break;
        case 'rename':
          fs.renameSync(at(op.src), at(op.dst));
          break;
      }
      return { ok: true };
    } catch (err) {
      return codeOf(err);
    }
  });
}

/** The operations through the engine's API. */
export async function applyEngine(spec: StackSpec, ops: WOp[]): Promise<Result[]> {
  const ov = await Overlay.open(spec);
  const out: Result[] = [];
  try {
    for (const op of ops) {
      try {
        switch (op.kind) {
          case 'write':
            await ov.writeFile(op.path, op.data);
            break;
          case 'append':
            await ov.appendFile(op.path, op.data);
            break;
          case 'truncate':
            await ov.truncate(op.path, op.size);
            break;
          case 'open': {
            const h = await ov.open(op.path, { write: true, truncate: op.truncate });
            try {
              if (op.data !== undefined) await ov.writeHandle(h, 0, Buffer.from(op.data));
            } finally {
              await ov.closeHandle(h);
            }
            break;
          }
          case 'chmod':
            await ov.chmod(op.path, op.mode);
            break;
          case 'rename':
            await ov.rename(op.src, op.dst);
            break;
        }
        out.push({ ok: true });
      } catch (err) {
        out.push(codeOf(err));
      }
    }
  } finally {
    await ov.close();
  }
  return out;
}

/** What privilegeChild.ts is asked to do. */
export type ChildJob = { fs: string; ops: WOp[] } | { engine: StackSpec; ops: WOp[] };

/** Run a job as `writer`: in this process for root, else in privilegeChild.js as that user. */
async function runAs(writer: Writer, job: ChildJob): Promise<Result[]> {
  if (!writer) return 'fs' in job ? applyFs(job.fs, job.ops) : applyEngine(job.engine, job.ops);
  const child = spawn(process.execPath, [CHILD, JSON.stringify(job)], { stdio: ['ignore', 'pipe', 'pipe'], uid: writer.uid, gid: writer.gid });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const status = await new Promise<number | null>((resolve) => child.on('close', resolve));
  try {
    return JSON.parse(out) as Result[];
  } catch {
    throw new Error(`privilegeChild as uid ${writer.uid} gave no report (status ${status}): ${out}${err}`);
  }
}

// ---------------------------------------------------------------- the server and the CLI

const b64 = (s: string): string => Buffer.from(s).toString('base64');

async function serverOp(conn: Server['conn'], name: string, op: WOp): Promise<Result> {
  try {
    switch (op.kind) {
      case 'write':
        await conn.sendRequest(P.WriteFile.type, { name, path: op.path, data: b64(op.data), create: true, overwrite: true });
        break;
      case 'append': {
        const { size } = await conn.sendRequest(P.Stat.type, { name, path: op.path });
        const { handle } = await conn.sendRequest(P.Open.type, { name, path: op.path, write: true });
        try {
          await conn.sendRequest(P.Write.type, { name, handle, position: size, data: b64(op.data) });
        } finally {
          await conn.sendRequest(P.Close.type, { name, handle });
        }
        break;
      }
      case 'truncate':
      case 'open': {
        const truncate = op.kind === 'truncate' || op.truncate === true;
        const { handle } = await conn.sendRequest(P.Open.type, { name, path: op.path, write: true, truncate });
        try {
          if (op.kind === 'open' && op.data !== undefined) await conn.sendRequest(P.Write.type, { name, handle, position: 0, data: b64(op.data) });
        } finally {
          await conn.sendRequest(P.Close.type, { name, handle });
        }
        break;
      }
      case 'rename':
        // overwrite: rename(2) replaces what is there, as the kernel reference does.
        await conn.sendRequest(P.Rename.type, { name, from: op.src, to: op.dst, overwrite: true });
        break;
      case 'chmod':
        throw new Error('the protocol has no chmod');
    }
    return { ok: true };
  } catch (err) {
    if (err instanceof ResponseError) return { ok: false, code: (err.data as { code?: string } | undefined)?.code ?? `jsonrpc ${err.code}` };
    throw err;
  }
}

function cliOp(d: OverlayDirs, op: WOp, writer: Writer): Result {
  const stack = ['--lower', d.lower.join(':'), '--upper', d.upper, '--work', d.work];
  let args: string[];
  let input = '';
  switch (op.kind) {
    case 'write':
    case 'append':
      args = [op.kind, op.path];
      input = op.data;
      break;
    case 'truncate':
      args = ['truncate', op.path, String(op.size)];
      break;
    case 'chmod':
      args = ['chmod', op.mode.toString(8), op.path];
      break;
    case 'rename':
      args = ['mv', op.src, op.dst];
      break;
    case 'open':
      throw new Error('the CLI has no handles');
  }
  const r = spawnSync(process.execPath, [BIN, ...stack, ...args], { input, encoding: 'utf8', timeout: 60_000, ...(writer ?? {}) });
  if (r.status === 0) return { ok: true };
  const m = /^overlayws: (E[A-Z]+):/m.exec(r.stderr);
  return { ok: false, code: m ? m[1] : `CLI status ${r.status}: ${r.stderr}${r.error?.message ?? ''}` };
}

// ---------------------------------------------------------------- runs

/** What a run leaves: each operation's outcome, the merged view and the raw upper directory. */
export interface Outcome {
  results: Result[];
  merged: string[];
  upper: string[];
}

/** The reference: the operations on a kernel mount of a copy of the case, by the writer. */
export async function runKernel(d: OverlayDirs, ops: WOp[], writer: Writer): Promise<Outcome> {
  mountKernel(d);
  let results: Result[];
  let merged: string[];
  try {
    results = await runAs(writer, { fs: d.merged, ops });
    merged = dumpMount(d.merged).lines;
  } finally {
    unmount(d.merged);
  }
  return { results, merged, upper: dumpLayer(d.upper, { owners: true }) };
}

/** The operations through `route` on a copy of the case (`server` serves both server routes). */
export async function runRoute(route: Route, d: OverlayDirs, ops: WOp[], writer: Writer, server: Server): Promise<Outcome> {
  const live = route.endsWith('-live');
  const spec = specOf(d);
  if (live) mountKernel(d);
  let results: Result[] = [];
  let merged: string[];
  try {
    if (route === 'engine') results = await runAs(writer, { engine: spec, ops });
    else if (route.startsWith('cli')) results = ops.map((op) => cliOp(d, op, writer));
    else {
      const name = `case-${path.basename(path.dirname(d.upper))}`;
      const info = await server.conn.sendRequest(P.AddOverlay.type, { name, spec });
      if (live !== (info.liveMount?.reachable === true)) throw new Error(`the server saw liveMount=${JSON.stringify(info.liveMount)} on the ${route} route`);
      try {
        for (const op of ops) results.push(await serverOp(server.conn, name, op));
      } finally {
        await server.conn.sendRequest(P.RemoveOverlay.type, { name });
      }
    }
    if (live) merged = dumpMount(d.merged).lines;
    else {
      const ov = await Overlay.open(spec);
      try {
        merged = await dumpEngine(ov);
      } finally {
        await ov.close();
      }
    }
  } finally {
    if (live && isMounted(d.merged)) unmount(d.merged);
  }
  return { results, merged, upper: dumpLayer(d.upper, { owners: true }) };
}

/** A scratch directory others can enter (the writer may be 65534), and whether the kernel mounts here. */
export function scratch(tag: string): { dir: string; unavailable?: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `ovlws-${tag}-`));
  fs.chmodSync(dir, 0o755);
  const probe = path.join(dir, 'probe');
  fs.mkdirSync(probe);
  const unavailable = kernelOverlayUnavailable(probe);
  fs.rmSync(probe, { recursive: true, force: true });
  return { dir, unavailable };
}

export { startServer, type Server };
