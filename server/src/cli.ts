/**
 * overlayws: the overlay engine from a terminal.
 *   overlayws --lower DIR[:DIR...] [--upper DIR --work DIR] [--whiteouts kernel|oci|auto] COMMAND ...
 * Exit 0 on success, 1 on an operation error (one stderr line), 2 on a usage error.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import {
  compareNames,
  createError,
  encodePath,
  listChoices,
  Overlay,
  parseDockerInspect,
  parseDockerLayerDir,
  parseMountOptions,
  whiteoutFormatNames,
  type StackSpec,
} from './overlay';
import { exportLayer, importLayer } from './overlay/oci';
import { findLiveMount, LiveWriter } from './liveMount';

const USAGE = `usage: overlayws STACK COMMAND [ARGS]
STACK:
  --lower DIR[:DIR...]   lower layers, top-most first (\\: escapes a colon)
  --upper DIR --work DIR writable upper layer and its work directory
  --whiteouts FORMAT     ${[...whiteoutFormatNames(), 'auto'].join(' | ')} (default auto)
  --userxattr            opaque markers in user.overlay.* (mount -o userxattr)
  --mount-opts STRING    lowerdir=a:b,upperdir=u,workdir=w
  --docker-layer DIR     a Docker overlay2 layer directory
  --spec FILE.json       a stack spec or docker inspect JSON
COMMANDS (paths are absolute from the overlay root):
  ls PATH | cat PATH | stat PATH | tree [PATH] | resolve PATH | diff
  write PATH | append PATH        (data from stdin)
  truncate PATH SIZE | mkdir [-p] PATH | rm [-r] PATH | rmdir PATH
  mv SRC DST | ln -s TARGET PATH | chmod OCTAL PATH
  export FILE.tar[.gz]            the upper layer as an OCI layer tarball (gzip by name)
overlayws import-layer FILE.tar[.gz|.zst] DIR [--whiteouts ${whiteoutFormatNames().join('|')}] [--userxattr]
  unpack an OCI layer (tar, gzip or zstd) into DIR for use as a lower layer (no stack needed;
  with a STACK before it (the layers it goes on), that stack's whiteout format is
  used and parent dirs the tarball leaves out copy their metadata from it)`;

class UsageError extends Error {}

const WRITES = new Set(['write', 'append', 'truncate', 'mkdir', 'rm', 'rmdir', 'mv', 'ln', 'chmod']);

function splitLower(value: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (let i = 0; i < value.length; i++) {
    if (value[i] === '\\' && value[i + 1] === ':') {
      cur += ':';
      i++;
      continue;
    }
    if (value[i] === ':') {
      out.push(cur);
      cur = '';
      continue;
    }
    cur += value[i];
  }
  out.push(cur);
  return out.filter((d) => d !== '');
}

export function parseArgs(argv: string[]): { spec: StackSpec; command: string; args: string[] } {
  let spec: StackSpec | undefined;
  const explicit: Partial<StackSpec> = {};
  let i = 0;
  const value = (flag: string): string => {
    const v = argv[++i];
    if (v === undefined) throw new UsageError(`${flag} needs a value`);
    return v;
  };
  for (; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) break;
    switch (a) {
      case '--lower':
        explicit.lower = splitLower(value(a));
        break;
      case '--upper':
        explicit.upper = value(a);
        break;
      case '--work':
        explicit.work = value(a);
        break;
      case '--whiteouts': {
        const w = value(a);
        if (w !== 'auto' && !whiteoutFormatNames().includes(w))
          throw new UsageError(`--whiteouts must be ${listChoices([...whiteoutFormatNames(), 'auto'])}, not ${JSON.stringify(w)}`);
        explicit.whiteouts = w;
        break;
      }
      case '--userxattr':
        explicit.userxattr = true;
        break;
      case '--mount-opts':
        spec = parseMountOptions(value(a));
        break;
      case '--docker-layer':
        spec = parseDockerLayerDir(value(a));
        break;
      case '--spec': {
        const file = value(a);
        const json = JSON.parse(fs.readFileSync(file, 'utf8')) as unknown;
        spec = Array.isArray(json) || (json as { GraphDriver?: unknown }).GraphDriver ? parseDockerInspect(json as object) : (json as StackSpec);
        break;
      }
      case '--help':
        throw new UsageError('');
      default:
        throw new UsageError(`unknown option ${a}`);
    }
  }
  spec = { ...(spec ?? { lower: [] }), ...explicit } as StackSpec;
  if (argv[i] === 'import-layer') return { spec, command: argv[i], args: argv.slice(i + 1) };
  if (!spec.lower || spec.lower.length === 0) throw new UsageError('no lower layers (--lower, --mount-opts, --docker-layer or --spec)');
  if ((spec.upper === undefined) !== (spec.work === undefined)) throw new UsageError('--upper and --work go together');
  const command = argv[i];
  if (!command) throw new UsageError('no command');
  return { spec, command, args: argv.slice(i + 1) };
}

function need(args: string[], n: number, what: string): void {
  if (args.length !== n) throw new UsageError(`${what}`);
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Byte order of names as they are on disk (a name that is not UTF-8 prints with U+F780–U+F7FF chars, see overlay/names.ts). */
const bytewise = compareNames;

async function tree(ov: Overlay, root: string, out: (line: string) => void): Promise<void> {
  const lines: { path: string; line: string }[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const e of await ov.readdir(dir)) {
      const p = (dir === '/' ? '' : dir) + '/' + e.name;
      const st = await ov.lstat(p);
      let obj: Record<string, unknown>;
      if (st.type === 'f')
        obj = {
          path: p,
          type: 'f',
          mode: st.mode,
          size: st.size,
          sha256: createHash('sha256')
            .update(await ov.readFile(p))
            .digest('hex'),
        };
      else if (st.type === 'd') obj = { path: p, type: 'd', mode: st.mode };
      else if (st.type === 'l') obj = { path: p, type: 'l', target: await ov.readlink(p) };
      else obj = { path: p, type: st.type, mode: st.mode };
      lines.push({ path: p, line: JSON.stringify(obj) });
      if (st.type === 'd') await walk(p);
    }
  };
  await walk(root);
  lines.sort((a, b) => bytewise(a.path, b.path));
  for (const l of lines) out(l.line);
}

/** The write commands' operations: done by the engine, or through a live kernel mount. */
interface Writes {
  writeFile(p: string, data: Buffer): Promise<void>;
  appendFile(p: string, data: Buffer): Promise<void>;
  truncate(p: string, size: number): Promise<void>;
  mkdir(p: string, recursive: boolean): Promise<void>;
  rm(p: string, recursive: boolean): Promise<void>;
  rmdir(p: string): Promise<void>;
  rename(src: string, dst: string): Promise<void>;
  symlink(target: string, p: string): Promise<void>;
  chmod(p: string, mode: number): Promise<void>;
}

function engineWrites(ov: Overlay): Writes {
  return {
    writeFile: (p, data) => ov.writeFile(p, data),
    appendFile: (p, data) => ov.appendFile(p, data),
    truncate: (p, size) => ov.truncate(p, size),
    mkdir: (p, recursive) => ov.mkdir(p, { recursive }),
    rm: (p, recursive) => ov.rm(p, { recursive }),
    rmdir: (p) => ov.rmdir(p),
    rename: (src, dst) => ov.rename(src, dst),
    symlink: (target, p) => ov.symlink(target, p),
    chmod: (p, mode) => ov.chmod(p, mode),
  };
}

/** Writes through the merged directory of the kernel mount that owns the upper: the kernel copies up. */
function liveWrites(live: LiveWriter): Writes {
  const fsp = fs.promises;
  const at = (p: string, syscall: string, follow = false): string | Buffer => encodePath(live.pathOf(p, syscall, follow));
  return {
    writeFile: (p, data) => live.writeFile(p, data, true, true),
    appendFile: (p, data) => live.through('open', p, () => fsp.appendFile(at(p, 'open', true), data)),
    truncate: (p, size) => live.through('open', p, () => fsp.truncate(at(p, 'open', true), size)),
    mkdir: async (p, recursive) => {
      if (!recursive) return live.through('mkdir', p, () => fsp.mkdir(at(p, 'mkdir')));
      // One level at a time: each parent is looked up in the overlay (symlinks stay inside it).
      const comps = p.split('/').filter((c) => c !== '' && c !== '.');
      for (let i = 1; i <= comps.length; i++) {
        const sub = '/' + comps.slice(0, i).join('/');
        await live.through('mkdir', p, async () => {
          const real = at(sub, 'mkdir', true);
          if ((await fsp.stat(real).catch(() => undefined))?.isDirectory()) return;
          await fsp.mkdir(real);
        });
      }
    },
    rm: (p, recursive) => live.delete(p, recursive),
    rmdir: (p) => live.through('rmdir', p, () => fsp.rmdir(at(p, 'rmdir'))),
    rename: (src, dst) => live.rename(src, dst, false),
    symlink: (target, p) => live.through('symlink', p, () => fsp.symlink(encodePath(target), at(p, 'symlink'))),
    chmod: (p, mode) => live.through('chmod', p, () => fsp.chmod(at(p, 'chmod', true), mode)),
  };
}

export async function runCommand(ov: Overlay, command: string, args: string[], out: (s: string | Buffer) => void, w: Writes = engineWrites(ov)): Promise<void> {
  const line = (s: string): void => out(s + '\n');
  switch (command) {
    case 'ls': {
      need(args, 1, 'ls PATH');
      const st = await ov.stat(args[0]);
      if (st.type !== 'd') {
        line(`${st.type} ${args[0].split('/').filter(Boolean).pop() ?? '/'}`);
        return;
      }
      for (const e of (await ov.readdir(args[0])).sort((a, b) => bytewise(a.name, b.name))) line(`${e.type} ${e.name}`);
      return;
    }
    case 'cat':
      need(args, 1, 'cat PATH');
      out(await ov.readFile(args[0]));
      return;
    case 'stat': {
      need(args, 1, 'stat PATH');
      const st = await ov.lstat(args[0]);
      line(JSON.stringify({ type: st.type, size: st.size, mode: st.mode, mtimeMs: st.mtimeMs, layer: st.layer }));
      return;
    }
    case 'tree':
      if (args.length > 1) throw new UsageError('tree [PATH]');
      await tree(ov, args[0] ?? '/', line);
      return;
    case 'resolve': {
      need(args, 1, 'resolve PATH');
      const r = await ov.resolve(args[0]);
      line(JSON.stringify({ path: r.path, layer: r.layer, realPath: r.realPath, type: r.type }));
      return;
    }
    case 'diff':
      need(args, 0, 'diff');
      for (const c of await ov.diff()) line(`${c.kind} ${c.path}`);
      return;
    case 'write':
      need(args, 1, 'write PATH');
      await w.writeFile(args[0], await readStdin());
      return;
    case 'append':
      need(args, 1, 'append PATH');
      await w.appendFile(args[0], await readStdin());
      return;
    case 'truncate': {
      need(args, 2, 'truncate PATH SIZE');
      if (!/^\d+$/.test(args[1])) throw new UsageError('truncate PATH SIZE (SIZE in bytes)');
      await w.truncate(args[0], Number(args[1]));
      return;
    }
    case 'mkdir': {
      const p = args[0] === '-p';
      need(args, p ? 2 : 1, 'mkdir [-p] PATH');
      await w.mkdir(args[p ? 1 : 0], p);
      return;
    }
    case 'rm': {
      const r = args[0] === '-r' || args[0] === '-rf' || args[0] === '-R';
      need(args, r ? 2 : 1, 'rm [-r] PATH');
      await w.rm(args[r ? 1 : 0], r);
      return;
    }
    case 'rmdir':
      need(args, 1, 'rmdir PATH');
      await w.rmdir(args[0]);
      return;
    case 'mv':
      need(args, 2, 'mv SRC DST');
      await w.rename(args[0], args[1]);
      return;
    case 'ln': {
      if (args[0] !== '-s' || args.length !== 3) throw new UsageError('ln -s TARGET PATH');
      await w.symlink(args[1], args[2]);
      return;
    }
    case 'chmod': {
      need(args, 2, 'chmod OCTAL PATH');
      if (!/^[0-7]{1,4}$/.test(args[0])) throw new UsageError('chmod OCTAL PATH (mode in octal, e.g. 644)');
      await w.chmod(args[1], parseInt(args[0], 8));
      return;
    }
    case 'export': {
      need(args, 1, 'export FILE.tar[.gz]');
      await exportLayer(ov, args[0]);
      return;
    }
    default:
      throw new UsageError(`unknown command ${JSON.stringify(command)}`);
  }
}

/** `import-layer FILE DIR [--whiteouts kernel|oci] [--userxattr]`; a stack given before it lends its format. */
async function runImportLayer(spec: StackSpec, argv: string[]): Promise<void> {
  const args: string[] = [];
  let whiteouts = spec.whiteouts;
  let userxattr = spec.userxattr ?? false;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--whiteouts') {
      const w = argv[++i];
      if (!whiteoutFormatNames().includes(w)) throw new UsageError(`import-layer: --whiteouts must be ${listChoices(whiteoutFormatNames())}`);
      whiteouts = w;
    } else if (argv[i] === '--userxattr') userxattr = true;
    else if (argv[i].startsWith('--')) throw new UsageError(`unknown option ${argv[i]}`);
    else args.push(argv[i]);
  }
  need(args, 2, `import-layer FILE.tar[.gz|.zst] DIR [--whiteouts ${whiteoutFormatNames().join('|')}]`);
  // A stack given before the command is the one the layer goes on: its format, and the
  // metadata for parent directories the tarball leaves out.
  const ov = (spec.lower?.length ?? 0) > 0 ? await Overlay.open(spec) : undefined;
  try {
    if (whiteouts === undefined || whiteouts === 'auto') {
      whiteouts = ov?.stack.whiteouts ?? whiteoutFormatNames()[0];
      userxattr = ov?.stack.userxattr ?? userxattr;
    }
    await importLayer(args[0], args[1], { whiteouts, userxattr }, { parentsFrom: ov });
  } finally {
    await ov?.close();
  }
}

export async function main(argv: string[]): Promise<number> {
  let ov: Overlay | undefined;
  try {
    const { spec, command, args } = parseArgs(argv);
    if (command === 'import-layer') {
      await runImportLayer(spec, args);
      return 0;
    }
    // An upper that a mounted kernel overlay uses is written through that mount (as the
    // server does): the kernel makes the copy-ups, nothing changes behind its back.
    const live = spec.upper ? findLiveMount(spec.upper) : undefined;
    ov = await Overlay.open(live?.reachable && !spec.merged ? { ...spec, merged: live.merged } : spec);
    let writes: Writes | undefined;
    if (live && WRITES.has(command)) {
      if (!live.reachable)
        throw createError(
          'EBUSY',
          command,
          ov.stack.upper as string,
          `the upper directory belongs to a mounted kernel overlay${live.merged ? ` (${live.merged})` : ''} that is not reachable from here; writing its upper behind the kernel's back is undefined: write through the mount, or unmount it first`,
        );
      writes = liveWrites(new LiveWriter(ov, live.merged));
    }
    await runCommand(ov, command, args, (s) => process.stdout.write(s), writes);
    return 0;
  } catch (err) {
    if (err instanceof UsageError) {
      if (err.message) process.stderr.write(`overlayws: ${err.message}\n`);
      process.stderr.write(USAGE + '\n');
      return 2;
    }
    const e = err as { code?: string; description?: string; message?: string; path?: string };
    const desc = e.description ?? e.message ?? String(err);
    process.stderr.write(`overlayws: ${e.code ?? 'EIO'}: ${desc}${e.path !== undefined ? `, '${e.path}'` : ''}\n`);
    return 1;
  } finally {
    await ov?.close();
  }
}

if (require.main === module) {
  void main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
