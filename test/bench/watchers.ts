/**
 * What watching a big tree costs, by watcher, each in a process of its own (RSS after
 * its initial scan, then a full GC): the data behind the open memory question of
 * issue 5 (150 MiB at 1M entries while chokidar watches every layer).
 *
 *   node out/test/bench/watchers.js [--dirs 90000] [--files-per-dir 11]
 *
 * Rows: chokidar as the server configures it (directories only, watcher.ts); one bare
 * fs.watch per directory (the least any per-directory Node watcher can hold);
 * @parcel/watcher and inotifywait when present (neither is a dependency: `npm i --no-save
 * @parcel/watcher`, `apt-get install inotify-tools`). A row that cannot run says why.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const arg = (flag: string, dflt: number): number => {
  const i = process.argv.indexOf(flag);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};

/** Child programs: each prints its RSS in MiB once watching (after a GC). */
const PROGRAMS: Record<string, string> = {
  chokidar: `
    const { watch } = require(${JSON.stringify(require.resolve('chokidar'))});
    const w = watch(process.argv[1], { ignoreInitial: true, followSymlinks: false, atomic: false, ignorePermissionErrors: true,
      ignored: (p, s) => s !== undefined && !s.isDirectory() });
    w.on('ready', () => { global.gc(); setTimeout(() => { global.gc(); console.log(process.memoryUsage().rss / 2 ** 20); process.exit(0); }, 2000); });`,
  'fs.watch per directory': `
    const fs = require('fs'); const ws = [];
    (function walk(d) { ws.push(fs.watch(d, () => undefined)); for (const e of fs.readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(d + '/' + e.name); })(process.argv[1]);
    global.gc(); setTimeout(() => { global.gc(); console.log(process.memoryUsage().rss / 2 ** 20); process.exit(0); }, 2000);`,
  '@parcel/watcher (inotify)': `
    const w = require('@parcel/watcher');
    w.subscribe(process.argv[1], () => undefined, { backend: 'inotify' }).then(() => { global.gc(); setTimeout(() => { console.log(process.memoryUsage().rss / 2 ** 20); process.exit(0); }, 2000); });`,
};

function buildTree(root: string, dirs: number, filesPerDir: number): void {
  const fan = Math.ceil(Math.cbrt(dirs));
  let made = 0;
  for (let a = 0; a < fan && made < dirs; a++) {
    for (let b = 0; b < fan && made < dirs; b++) {
      for (let c = 0; c < fan && made < dirs; c++, made++) {
        const d = path.join(root, `a${a}`, `b${b}`, `c${c}`);
        fs.mkdirSync(d, { recursive: true });
        for (let f = 0; f < filesPerDir; f++) fs.writeFileSync(path.join(d, `f${f}`), '');
      }
    }
  }
}

function runNode(program: string, tree: string): Promise<string> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--expose-gc', '-e', program, tree], {
      stdio: ['ignore', 'pipe', 'pipe'],
      cwd: path.resolve(__dirname, '../../..'),
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.on('exit', () =>
      resolve(
        Number.isFinite(parseFloat(out))
          ? `${parseFloat(out).toFixed(0)} MiB`
          : `did not run: ${(err.split('\n').find((l) => /Error/.test(l)) ?? err).trim().slice(0, 120)}`,
      ),
    );
  });
}

async function inotifywait(tree: string): Promise<string> {
  if (spawnSync('inotifywait', ['--help']).error) return 'did not run: inotifywait is not installed (apt-get install inotify-tools)';
  const child = spawn('inotifywait', ['-m', '-r', '-q', tree], { stdio: ['ignore', 'ignore', 'pipe'] });
  let errors = '';
  child.stderr.on('data', (d: Buffer) => {
    errors += d.toString();
  });
  // It prints "Watches established." on stderr without -q; with -q, poll its RSS until it settles.
  let last = -1;
  for (;;) {
    await new Promise((r) => setTimeout(r, 1000));
    const status = fs.readFileSync(`/proc/${child.pid}/status`, 'utf8');
    const rss = Number((status.match(/VmRSS:\s+(\d+)/) ?? [])[1] ?? 0) / 1024;
    if (rss === last || child.exitCode !== null) break;
    last = rss;
  }
  child.kill();
  return errors.trim() ? `did not run: ${errors.trim().slice(0, 120)}` : `${last.toFixed(0)} MiB (a C process of its own)`;
}

async function main(): Promise<void> {
  const dirs = arg('--dirs', 90_000);
  const filesPerDir = arg('--files-per-dir', 11);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ovlws-watchers-'));
  try {
    const t0 = Date.now();
    buildTree(root, dirs, filesPerDir);
    const count = Number(execFileSync('sh', ['-c', `find '${root}' | wc -l`], { encoding: 'utf8' }).trim());
    console.log(
      `tree: ${dirs} directories, ${dirs * filesPerDir} files (${count} entries), built in ${((Date.now() - t0) / 1000).toFixed(0)} s; max_user_watches ${fs.readFileSync('/proc/sys/fs/inotify/max_user_watches', 'utf8').trim()}`,
    );
    console.log('\n| watcher | RSS once watching |\n|---|---|');
    for (const [name, program] of Object.entries(PROGRAMS)) console.log(`| ${name} | ${await runNode(program, root)} |`);
    console.log(`| inotifywait -m -r | ${await inotifywait(root)} |`);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
