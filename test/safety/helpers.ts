/**
 * Shared pieces of the safety suite: temp dirs, tree hashes, canaries, a seeded PRNG,
 * and the CI/long switch (OVERLAY_SAFETY_LONG=1 runs every loop many times longer).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Job, Report } from './unprivilegedChild';

export const LONG = process.env.OVERLAY_SAFETY_LONG === '1';

/** `ci` in the default run, `long` with OVERLAY_SAFETY_LONG=1. */
export function scale(ci: number, long: number): number {
  return LONG ? long : ci;
}

export function tempDir(tag: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `ovlws-safety-${tag}-`));
}

/** mulberry32: small, seeded, reproducible. Print the seed so a failure can be replayed. */
export function prng(seed: number): { next(): number; int(n: number): number; pick<T>(a: readonly T[]): T } {
  let s = seed >>> 0;
  const next = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (n) => Math.floor(next() * n), pick: (a) => a[Math.floor(next() * a.length)] };
}

export function seedFromEnv(): number {
  const s = Number(process.env.OVERLAY_SAFETY_SEED);
  return Number.isInteger(s) && s > 0 ? s : Date.now() % 1_000_000_007;
}

export function sha(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

export function hashFile(p: string): string {
  const h = createHash('sha256');
  const fd = fs.openSync(p, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}

/**
 * Fingerprint of a whole tree without following symlinks or opening anything but
 * regular files: names (as raw bytes), types, modes, sizes, mtimes, contents, link targets.
 * `skipOpen` names regular files not to read (huge sparse files): size+mtime only.
 */
export function treeHash(root: string, skipOpen: (p: string, st: fs.Stats) => boolean = () => false): string {
  const h = createHash('sha256');
  const walk = (dir: Buffer): void => {
    const names = (fs.readdirSync(dir, { encoding: 'buffer' }) as Buffer[]).sort(Buffer.compare);
    for (const name of names) {
      const p = Buffer.concat([dir, Buffer.from('/'), name]);
      const st = fs.lstatSync(p);
      h.update(name).update(`\0${st.mode.toString(8)} ${st.mtimeMs} ${st.size}\0`);
      if (st.isDirectory()) {
        try {
          fs.accessSync(p, fs.constants.R_OK | fs.constants.X_OK);
        } catch {
          h.update('unreadable');
          continue;
        }
        walk(p);
      } else if (st.isSymbolicLink()) h.update(fs.readlinkSync(p, { encoding: 'buffer' }));
      else if (st.isFile() && !skipOpen(p.toString(), st)) h.update(hashFileBuf(p));
      else h.update(String(st.rdev));
    }
  };
  walk(Buffer.from(root));
  return h.digest('hex');
}

/**
 * Canary files outside any stack. atime is not reliable (relatime/noatime), so a canary
 * proves "never written" by content+mtime+ctime, and "never read" by its unique bytes
 * never showing up in any answer of the engine.
 */
export class Canaries {
  readonly dir: string;
  readonly token: string;
  readonly files: string[] = [];
  private readonly before = new Map<string, string>();

  constructor(parent: string) {
    this.dir = path.join(parent, 'canary');
    fs.mkdirSync(this.dir, { recursive: true });
    this.token = `CANARY-${process.pid}-${Math.random().toString(36).slice(2)}`;
    for (const name of ['secret.txt', 'passwd', 'dir/nested.txt']) this.add(name);
  }

  add(name: string): string {
    const p = path.join(this.dir, name);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, `${this.token} ${name}\n`);
    this.files.push(p);
    this.before.set(p, this.state(p));
    return p;
  }

  private state(p: string): string {
    const st = fs.lstatSync(p);
    return `${fs.readFileSync(p, 'utf8')}|${st.mtimeMs}|${st.ctimeMs}|${st.mode}`;
  }

  /** Names of canaries whose content, mtime, ctime or mode changed, plus new entries in the canary dir. */
  changed(): string[] {
    const out = this.files.filter((p) => {
      try {
        return this.state(p) !== this.before.get(p);
      } catch {
        return true;
      }
    });
    const now = fs.readdirSync(this.dir, { recursive: true }).map(String).sort();
    const expected = [
      ...new Set(
        this.files.flatMap((p) => {
          const r = path.relative(this.dir, p);
          return r.includes('/') ? [r.split('/')[0], r] : [r];
        }),
      ),
    ].sort();
    if (JSON.stringify(now) !== JSON.stringify(expected)) out.push(`canary dir listing changed: ${now.join(',')}`);
    return out;
  }

  /** True when `data` contains the canary token (the engine read a canary). */
  leaked(data: unknown): boolean {
    if (data === undefined || data === null) return false;
    if (Buffer.isBuffer(data) || data instanceof Uint8Array) return Buffer.from(data).includes(this.token);
    return JSON.stringify(data).includes(this.token);
  }
}

/** Inside a directory (string prefix after realpath-free normalisation). */
export function isInside(child: string, parents: readonly string[]): boolean {
  return parents.some((p) => child === p || child.startsWith(p.endsWith('/') ? p : p + '/'));
}

export function openFdCount(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

export function fdsOf(pid: number): number {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

/** Poll `cond` until it is true or `ms` pass. */
export async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Prefix of the stderr line gcOnSignal.ts writes (process.memoryUsage() after a full GC). */
export const GC_STATS = 'ovlws-gc-stats ';

/** Where the suite prints its figures (one line each, prefixed for grep). */
export function figure(line: string): void {
  process.stdout.write(`# safety: ${line}\n`);
}

function hashFileBuf(p: Buffer): string {
  const h = createHash('sha256');
  h.update(fs.readFileSync(p));
  return h.digest('hex');
}

/**
 * The user the permission tests run as (root passes every permission check): nobody.
 * Give it to child_process options; only root can spawn as another user.
 */
export const NOBODY = { uid: 65534, gid: 65534 };
export const canBecomeNobody = process.getuid?.() === 0;

/** chown -R to nobody. */
export function chownToNobody(p: string): void {
  fs.lchownSync(p, NOBODY.uid, NOBODY.gid);
  if (fs.lstatSync(p).isDirectory()) for (const n of fs.readdirSync(p)) chownToNobody(path.join(p, n));
}

/** Run the engine as nobody (unprivilegedChild.ts) and return its report. */
export function engineAsNobody(job: Job): Report {
  const r = spawnSync(process.execPath, [path.join(__dirname, 'unprivilegedChild.js'), JSON.stringify(job)], { encoding: 'utf8', timeout: 60_000, ...NOBODY });
  const last = r.stdout.trim().split('\n').pop() ?? '';
  let report: Report & { crash?: string };
  try {
    report = JSON.parse(last) as Report & { crash?: string };
  } catch {
    throw new Error(`the engine as nobody gave no report (status ${r.status}, signal ${r.signal}): ${r.stdout}${r.stderr}${r.error?.message ?? ''}`);
  }
  if (report.crash) throw new Error(`the engine as nobody crashed: ${report.crash}`);
  return report;
}
