/** Real temporary layer stacks for engine tests; one directory per test, removed afterwards. */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Overlay, type WhiteoutFormat } from '../../server/src/overlay';

export const FORMATS: WhiteoutFormat[] = ['kernel', 'oci'];

/** A layer described as path → content: string = file, null = directory, {link} = symlink, 'WHITEOUT', 'OPAQUE'. */
export type LayerDesc = Record<string, string | null | { link: string } | { whiteout: true } | { opaque: true }>;

export interface TestStack {
  dir: string;
  lower: string[];
  upper: string;
  work: string;
  format: WhiteoutFormat;
  open(): Promise<Overlay>;
  cleanup(): void;
}

export function opaque(dir: string, format: WhiteoutFormat): void {
  if (format === 'oci') fs.writeFileSync(path.join(dir, '.wh..wh..opq'), '');
  else execFileSync('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'y', dir]);
}

export function whiteout(p: string, format: WhiteoutFormat): void {
  if (format === 'oci') fs.writeFileSync(path.join(path.dirname(p), '.wh.' + path.basename(p)), '');
  else execFileSync('mknod', [p, 'c', '0', '0']);
}

export function writeLayer(root: string, desc: LayerDesc, format: WhiteoutFormat): void {
  fs.mkdirSync(root, { recursive: true });
  for (const [rel, v] of Object.entries(desc)) {
    const p = path.join(root, rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    if (v === null) fs.mkdirSync(p, { recursive: true });
    else if (typeof v === 'string') fs.writeFileSync(p, v);
    else if ('link' in v) fs.symlinkSync(v.link, p);
    else if ('whiteout' in v) whiteout(p, format);
    else {
      fs.mkdirSync(p, { recursive: true });
      opaque(p, format);
    }
  }
}

/** Lowers top-most first. */
export function makeStack(format: WhiteoutFormat, lowers: LayerDesc[], upper: LayerDesc = {}): TestStack {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ovlws-unit-'));
  const lower = lowers.map((d, i) => {
    const p = path.join(dir, `l${i}`);
    writeLayer(p, d, format);
    return p;
  });
  const up = path.join(dir, 'upper');
  writeLayer(up, upper, format);
  const work = path.join(dir, 'work');
  fs.mkdirSync(work);
  return {
    dir,
    lower,
    upper: up,
    work,
    format,
    open: () => Overlay.open({ lower, upper: up, work, whiteouts: format }),
    cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

/** sha-like fingerprint of a whole directory tree (names, types, modes, contents, link targets, xattrs). */
export function snapshot(root: string): string {
  const out: string[] = [];
  const walk = (d: string, rel: string): void => {
    for (const name of fs.readdirSync(d).sort()) {
      const p = path.join(d, name);
      const st = fs.lstatSync(p);
      const r = rel + '/' + name;
      let x = '';
      try {
        x = execFileSync('getfattr', ['-h', '-d', '-m', '-', '--absolute-names', p], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
          .split('\n')
          .slice(1)
          .join(';');
      } catch {
        /* none */
      }
      if (st.isDirectory()) {
        out.push(`d ${r} ${st.mode.toString(8)} ${x}`);
        walk(p, r);
      } else if (st.isSymbolicLink()) out.push(`l ${r} -> ${fs.readlinkSync(p)}`);
      else if (st.isFile()) out.push(`f ${r} ${st.mode.toString(8)} ${st.mtimeMs} ${fs.readFileSync(p).toString('base64')} ${x}`);
      else out.push(`${st.isCharacterDevice() ? 'c' : '?'} ${r} ${st.rdev}`);
    }
  };
  walk(root, '');
  return out.join('\n');
}

export async function names(ov: Overlay, p: string): Promise<string[]> {
  return (await ov.readdir(p)).map((e) => e.name).sort();
}

export async function rejects(p: Promise<unknown>, code: string): Promise<void> {
  try {
    await p;
  } catch (err) {
    if ((err as { code?: string }).code !== code) throw new Error(`expected ${code}, got ${(err as Error).message}`, { cause: err });
    return;
  }
  throw new Error(`expected ${code}, but it succeeded`);
}

/** bin/overlayws.js with `args` (and stdin), as a terminal runs it. */
export function runCli(args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}): { code: number | null; out: string; err: string } {
  const bin = path.resolve(__dirname, '../../../bin/overlayws.js');
  const r = spawnSync(process.execPath, [bin, ...args], { input: opts.input, encoding: 'utf8', env: opts.env ?? process.env, maxBuffer: 1 << 28 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}
