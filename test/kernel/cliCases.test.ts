/**
 * The overlayws CLI against coreutils on a kernel overlay mount, case by case: each command runs
 * as coreutils on a kernel mount of a fresh copy of one fixed stack (the reference), as
 * bin/overlayws.js on another copy (the engine), and as bin/overlayws.js on a third copy that is
 * itself mounted (writes go through the live mount). Exit status and errno, the merged tree and
 * the raw upper directory must match. Everything runs as root and again as uid/gid 65534 on
 * layers that user owns (with a read-only directory and file, where permission checks decide).
 */
import { after, before, describe, it } from 'mocha';
import { skipBecause } from '../mocha/skip';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Overlay } from '../../server/src/overlay/index';
import { compareResults, OpResult } from './ops';
import { codesFromMessage, isMounted, kernelOverlayUnavailable, mountKernel, OverlayDirs, q, run, unmount } from './shell';
import { diffLines, dumpEngine, dumpLayer, dumpMount } from './tree';
import { cliResult, runOverlayws } from './targets';

interface User {
  uid: number;
  gid: number;
}
const NOBODY: User = { uid: 65534, gid: 65534 };

/** A command as coreutils takes it; an argument `@/p` is the path /p in the overlay. `input`: `write`/`append` read it. */
interface Case {
  argv: string[];
  input?: string;
  /** Why the engine target is left out as uid 65534 (the live mount still runs). */
  notAsNobody?: string;
}

const c = (line: string, input?: string): Case => ({ argv: line.split(' '), input });

const CASES: Case[] = [
  // truncate: a missing file is created (through a dangling symlink: its target), unless -c.
  c('truncate -s 3 @/new'),
  c('truncate -s 3 @/dang'),
  c('truncate -s 3 @/ldang'),
  c('truncate -s 3 @/dang2'),
  c('truncate -s 3 @/d'),
  c('truncate -c -s 3 @/miss'),
  c('truncate -s 3 @/loop1'),
  c('truncate -s 3 @/miss2/'),
  c('truncate -s 2 @/a'),
  c('truncate -s +5 @/a'),
  c('truncate -s 1K @/new'),
  c('truncate -s 3 @/ro/new'),
  c('truncate -c -s 3 @/ro/new'),
  c('truncate -s 3 @/fro'),
  // ln -s: inside an existing directory (a symlink to one too, unless -n); -f replaces; -T never goes inside.
  c('ln -s t1 @/d'),
  c('ln -s x/y/t2 @/ld'),
  c('ln -sn t3 @/ld'),
  c('ln -s t4 @/a'),
  c('ln -sf t4 @/a'),
  c('ln -sf t5 @/d'),
  c('ln -sf a @/d'),
  c('ln -sfT t6 @/e'),
  c('ln -sT t7 @/e'),
  c('ln -sf t8 @/dang'),
  c('ln -s t9 @/miss/x'),
  c('ln -s t10/ @/e'),
  c('ln -s .. @/e'),
  c('ln -sf .. @/e'),
  c('ln -s t11 @/e/'),
  c('ln -s t12 @/new/'),
  c('ln -s t13 @/a/'),
  c('ln -s t14 @/ro'),
  // mv: into an existing directory; a file onto itself (same name, a hard link, a symlink onto its target) is refused.
  c('mv @/a @/a'),
  c('mv @/a @/hl'),
  c('mv @/hl2 @/hl3'),
  c('mv @/la @/a'),
  c('mv @/a @/la'),
  c('mv @/d @/d'),
  c('mv -T @/d @/d'),
  c('mv @/d/a @/d'),
  c('mv @/dang @/dang'),
  c('mv @/a @/d'),
  c('mv @/c @/e'),
  c('mv @/e @/d'),
  c('mv @/f @/g'),
  // A directory with lower parts (EXDEV): to a new name mv copies what is below, with -T or into
  // a directory it renames entry by entry (d/p keeps its opaque marker).
  c('mv @/d @/dnew'),
  c('mv -T @/d @/dnew'),
  c('mv @/d @/e'),
  {
    argv: ['mv', '-T', '@/d', '@/e'],
    notAsNobody: 'the directory made over the whiteout of e needs a trusted.overlay.opaque marker, which only root may set (the kernel sets it as the mounter)',
  },
  c('mv @/a @/ld'),
  c('mv -T @/c @/d'),
  c('mv @/c @/newd/'),
  c('mv @/c @/h'),
  c('mv @/g @/h'),
  c('mv -n @/c @/a'),
  c('mv -f @/c @/a'),
  c('mv @/ro/k @/e'),
  c('mv @/a @/ro'),
  c('mv @/ro/k @/ro'),
  // rm: -f ignores a missing name, -d removes an empty directory, -r everything below.
  c('rm -f @/miss'),
  c('rm @/miss'),
  c('rm -f @/d'),
  c('rm -rf @/miss'),
  c('rm -f @/a/x'),
  c('rm -d @/e'),
  c('rm -d @/d'),
  c('rm -r @/d'),
  c('rm -f @/ro/k'),
  c('rm -rf @/ro'),
  c('rmdir @/e'),
  c('mkdir -p @/d/n/m'),
  c('mkdir -p @/a/x'),
  c('mkdir -p @/dang/x'),
  c('mkdir -p @/ld/n/m'),
  c('mkdir -p @/loop1/x'),
  c('mkdir @/ro/n'),
  // A trailing slash: the path must be a directory; through a symlink, the one it leads to.
  c('rm @/a/'),
  c('rm -f @/a/'),
  c('rm @/ld/'),
  c('rm -f @/ld/'),
  c('rm @/la/'),
  c('rmdir @/ld/'),
  c('rmdir @/a/'),
  c('mv @/a/ @/x'),
  c('mv @/ld/ @/x'),
  c('mv @/la/ @/x'),
  c('mv @/c @/ld/'),
  c('mv @/c @/a/'),
  c('chmod 600 @/a/'),
  c('chmod 700 @/ld/'),
  c('cat @/a/'),
  c('mkdir @/a/'),
  c('mkdir @/ld/'),
  c('ln -s t @/ld/'),
  c('truncate -s 1 @/a/'),
  c('truncate -s 1 @/la/'),
  { argv: ['write', '@/a/'], input: 'w' },
  // cat > and cat >>: through dangling symlinks too.
  { argv: ['write', '@/dang'], input: 'w\n' },
  { argv: ['append', '@/ldang'], input: 'app' },
  {
    argv: ['write', '@/ro/k'],
    input: 'w',
    notAsNobody:
      "the engine copies up and writes with the user's own rights, and it may not add a name to the upper copy of a 0555 directory; the kernel copies up with the mounter's",
  },
  c('chmod 600 @/a'),
  c('chmod 600 @/dang'),
  // chmod's symbolic modes, the umask for a mode without ugoa, a directory's set-group-ID bit.
  c('chmod u+x,go-r @/a'),
  c('chmod -w @/a'),
  c('chmod +w @/fro'),
  c('chmod g=u,o= @/a'),
  c('chmod a=rX @/d'),
  c('chmod =t @/e'),
  c('chmod 0755 @/sg'),
  c('chmod 00755 @/sg'),
  c('chmod g-s @/sg'),
  c('chmod 644 @/ld'),
];

const isPath = (a: string): boolean => a.startsWith('@/');

/** The shell line coreutils runs in the merged directory. */
function shellLine(k: Case): string {
  const args = k.argv.map((a) => (isPath(a) ? q('.' + a.slice(1)) : q(a)));
  if (k.argv[0] === 'write') return `printf '%s' ${q(k.input ?? '')} > ${args[1]}`;
  if (k.argv[0] === 'append') return `printf '%s' ${q(k.input ?? '')} >> ${args[1]}`;
  return args.join(' ');
}

/** The same command for overlayws. */
const cliArgs = (k: Case): string[] => k.argv.map((a) => (isPath(a) ? a.slice(1) : a));

function shAs(script: string, cwd: string, user?: User): Promise<OpResult> {
  const argv = ['-c', `umask 022; ${script}`];
  const [cmd, args] = user ? ['setpriv', [`--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups', '/bin/sh', ...argv]] : ['/bin/sh', argv];
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd, env: { ...process.env, LC_ALL: 'C' } }, (err, _out, stderr) => {
      resolve(
        err
          ? { ok: false, codes: codesFromMessage(stderr), detail: stderr.trim(), exit: typeof err.code === 'number' ? err.code : -1 }
          : { ok: true, codes: [], exit: 0 },
      );
    });
  });
}

/**
 * The fixed stack: a bottom layer made by hand, a layer and an upper left by kernel sessions.
 * `unprivileged`: no opaque directory, whose trusted.overlay.opaque marker only root can read
 * (a user's own stacks use userxattr).
 */
function buildStack(root: string, unprivileged: boolean): void {
  const L0 = path.join(root, 'L0');
  const w = (p: string, text: string, mode = 0o644): void => {
    fs.writeFileSync(path.join(L0, p), text);
    fs.chmodSync(path.join(L0, p), mode);
  };
  for (const d of ['d', 'e', 'f/a', 'h/c', 'ro', 'sg']) fs.mkdirSync(path.join(L0, d), { recursive: true });
  fs.chmodSync(path.join(L0, 'sg'), 0o2775);
  w('a', 'a\n');
  fs.linkSync(path.join(L0, 'a'), path.join(L0, 'hl'));
  w('b', 'b\n');
  w('hl2', 'two\n');
  fs.linkSync(path.join(L0, 'hl2'), path.join(L0, 'hl3'));
  w('d/x', 'x\n');
  w('d/a', 'z\n');
  w('f/a/q', 'q\n');
  w('ro/k', 'k\n');
  w('fro', 'read-only\n', 0o444);
  fs.chmodSync(path.join(L0, 'ro'), 0o555);
  for (const [name, target] of [
    ['la', 'a'],
    ['ld', 'd'],
    ['dang', 'nowhere'],
    ['dang2', 'sub/miss'],
    ['ldang', 'd/missing'],
    ['loop1', 'loop2'],
    ['loop2', 'loop1'],
  ])
    fs.symlinkSync(target, path.join(L0, name));
  // L1: what a kernel session over L0 leaves (a whiteout, an opaque directory, a new file and dir).
  session(root, ['L0'], 'L1', `rm b && echo c > c && mkdir g && echo i > g/i${unprivileged ? '' : ' && rm -r f/a && mkdir f/a'}`);
  // U: a copy-up of one hard link (its twin stays below: no longer the same file), a copied-up
  // directory, and in it a pure-upper directory the kernel made opaque when it moved in.
  session(root, ['L1', 'L0'], 'U', `echo more >> hl2 && echo y > d/y${unprivileged ? '' : ' && mkdir -p p/q && mv p d/p'}`);
}

function session(root: string, lower: string[], upper: string, script: string): void {
  const d: OverlayDirs = {
    lower: lower.map((l) => path.join(root, l)),
    upper: path.join(root, upper),
    work: path.join(root, 'sw'),
    merged: path.join(root, 'sm'),
  };
  for (const p of [d.upper, d.work, d.merged]) fs.mkdirSync(p, { recursive: true });
  mountKernel(d);
  try {
    run('/bin/sh', ['-c', script], d.merged);
  } finally {
    unmount(d.merged);
    fs.rmSync(d.work, { recursive: true, force: true });
    fs.rmSync(d.merged, { recursive: true, force: true });
  }
}

function copyStack(from: string, to: string, user?: User): OverlayDirs {
  fs.mkdirSync(to);
  for (const n of ['L0', 'L1', 'U']) run('cp', ['-a', path.join(from, n), path.join(to, n)]);
  for (const n of ['W', 'M']) fs.mkdirSync(path.join(to, n));
  if (user) fs.chownSync(path.join(to, 'W'), user.uid, user.gid); // the stack is that user's own
  return { lower: [path.join(to, 'L1'), path.join(to, 'L0')], upper: path.join(to, 'U'), work: path.join(to, 'W'), merged: path.join(to, 'M') };
}

const stackArgs = (d: OverlayDirs): string[] => ['--lower', d.lower.join(':'), '--upper', d.upper, '--work', d.work, '--whiteouts', 'kernel'];

interface Outcome {
  result: OpResult;
  merged: string[];
  upper: string[];
}

/** One case on one fresh copy: 'kernel' (coreutils on a mount), 'cli' (overlayws), 'live' (overlayws on a mounted copy). */
async function runCase(base: string, dir: string, k: Case, how: 'kernel' | 'cli' | 'live', user?: User): Promise<Outcome> {
  const d = copyStack(base, dir, user);
  try {
    if (how === 'cli') {
      const result = cliResult(await runOverlayws([...stackArgs(d), ...cliArgs(k)], k.input, user));
      const ov = await Overlay.open({ lower: d.lower, upper: d.upper, work: d.work, whiteouts: 'kernel' });
      try {
        return { result, merged: await dumpEngine(ov), upper: dumpLayer(d.upper) };
      } finally {
        await ov.close();
      }
    }
    mountKernel(d);
    let result: OpResult;
    let merged: string[];
    try {
      result = how === 'kernel' ? await shAs(shellLine(k), d.merged, user) : cliResult(await runOverlayws([...stackArgs(d), ...cliArgs(k)], k.input, user));
      merged = dumpMount(d.merged).lines;
    } finally {
      unmount(d.merged);
    }
    return { result, merged, upper: dumpLayer(d.upper) };
  } finally {
    if (isMounted(d.merged)) unmount(d.merged);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function describeOutcome(o: OpResult): string {
  return o.ok ? 'ok' : `exit ${o.exit} ${o.codes.join('|') || '?'} (${o.detail})`;
}

for (const who of ['root', 'nobody'] as const) {
  describe(`overlayws CLI vs coreutils on a kernel mount, as ${who}`, () => {
    let scratch = '';
    let base = '';
    let skip: string | undefined;
    const user = who === 'nobody' ? NOBODY : undefined;

    before(() => {
      scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'ovcli-'));
      fs.chmodSync(scratch, 0o755); // nobody walks to the layers
      skip = kernelOverlayUnavailable(scratch);
      if (skip) return;
      base = path.join(scratch, 'base');
      fs.mkdirSync(base);
      buildStack(base, !!user);
      if (user) run('chown', ['-R', `${user.uid}:${user.gid}`, base]);
    });

    after(() => {
      if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
    });

    for (const k of CASES) {
      const left = user && k.notAsNobody ? ` (live mount only: ${k.notAsNobody})` : '';
      const title = `${k.argv.join(' ').replace(/@\//g, '/')}${k.input !== undefined ? ` <<< ${JSON.stringify(k.input)}` : ''}${left}`;
      it(title, async function () {
        if (skip) skipBecause(this, skip);
        const ref = await runCase(base, path.join(scratch, 'k'), k, 'kernel', user);
        const problems: string[] = [];
        for (const how of user && k.notAsNobody ? (['live'] as const) : (['cli', 'live'] as const)) {
          const got = await runCase(base, path.join(scratch, how), k, how, user);
          const why = compareResults(ref.result, got.result);
          if (why) problems.push(`${how}: ${why}`);
          // (write and append stand for shell redirections, which fail with the shell's status 2.)
          if (ref.result.exit !== got.result.exit && !['write', 'append'].includes(k.argv[0]))
            problems.push(`${how}: exit ${got.result.exit}, coreutils ${ref.result.exit}`);
          const dm = diffLines(ref.merged, got.merged, 'kernel', how);
          if (dm.length) problems.push(`${how}: merged tree differs:`, ...dm.map((l) => '  ' + l));
          const du = diffLines(ref.upper, got.upper, 'kernel', how);
          if (du.length) problems.push(`${how}: upper differs:`, ...du.map((l) => '  ' + l));
        }
        assert.deepEqual(problems, [], `coreutils: ${shellLine(k)} => ${describeOutcome(ref.result)}\n${problems.join('\n')}`);
      });
    }
  });
}
