#!/usr/bin/env node
// `npm start`: bundle the extension, package it as a .vsix, prepare the demo overlay from
// the sample layers in test/fixtures/demo, install the e2e toolchain if needed
// (scripts/e2e/setup.sh: Node 24 + code-server), install the .vsix into a fresh
// code-server profile, start code-server on 127.0.0.1 and print the URL that opens the
// demo workspace. Runs until Ctrl-C, then stops code-server (its process group).
// code-server itself: scripts/lib/codeServer.mjs, shared with the e2e driver.
//
//   node scripts/start.mjs [--port N] [--dir DIR]   start (default port 8080, or a free one)
//   node scripts/start.mjs --prepare DIR             only write the demo overlay into DIR and
//                                                    print the .code-workspace path
//   node scripts/start.mjs --test [--vsix] [run.mjs options]
//                                                    build, prepare a fresh demo, and run the
//                                                    e2e suite (scripts/e2e/run.mjs) on it;
//                                                    --vsix: on the packaged, installed .vsix
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cleanEnv } from './lib/cleanEnv.mjs';
import { freePort, installExtension, installToolchain, makeProfile, startCodeServer, stopGroup, waitUntilServing } from './lib/codeServer.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DEMO_SRC = path.join(REPO, 'test/fixtures/demo/layers');
const log = (m) => console.log(`start: ${m}`);

/**
 * Copies the demo layers into `dir` and writes `dir/demo.code-workspace`.
 * Layers: layers/app (top lower), layers/base; upper and work are empty dirs.
 * OCI whiteouts (`.wh.NAME`) become kernel whiteouts (char device 0/0) when mknod works,
 * so the scratch copy is also mountable with `mount -t overlay`.
 */
export function prepareDemo(dir) {
  if (fs.existsSync(dir) && fs.readdirSync(dir).length > 0 && !fs.existsSync(path.join(dir, 'demo.code-workspace'))) {
    throw new Error(`${dir} is not empty and holds no demo: refusing to replace it`);
  }
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  fs.cpSync(DEMO_SRC, path.join(dir, 'layers'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'upper'));
  fs.mkdirSync(path.join(dir, 'work'));
  const whiteouts = toKernelWhiteouts(path.join(dir, 'layers')) ? 'kernel' : 'oci';
  const workspace = {
    folders: [{ uri: 'overlay://demo/', name: 'demo (overlay)' }],
    settings: {
      'overlay.overlays': {
        demo: { lower: ['layers/app', 'layers/base'], upper: 'upper', work: 'work', whiteouts },
      },
      'files.autoSave': 'off',
    },
  };
  const file = path.join(dir, 'demo.code-workspace');
  fs.writeFileSync(file, `${JSON.stringify(workspace, null, 2)}\n`);
  return file;
}

function toKernelWhiteouts(root) {
  const found = [];
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.startsWith('.wh.') && e.name !== '.wh..wh..opq') found.push(p);
    }
  };
  walk(root);
  for (const p of found) {
    const target = path.join(path.dirname(p), path.basename(p).slice(4));
    fs.rmSync(p);
    const r = spawnSync('mknod', [target, 'c', '0', '0'], { stdio: 'ignore' });
    if (r.status !== 0) {
      // no mknod here: put every OCI whiteout back and use the OCI format
      fs.writeFileSync(p, '');
      for (const q of found)
        if (!fs.existsSync(q)) {
          fs.rmSync(path.join(path.dirname(q), path.basename(q).slice(4)), { force: true });
          fs.writeFileSync(q, '');
        }
      return false;
    }
  }
  return true;
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: REPO, ...opts });
  if (r.status !== 0) {
    console.error(`start: ${cmd} ${args.join(' ')} failed (${r.signal ?? r.status})`);
    process.exit(1);
  }
  return r;
}

/** tsc -b (type check; out/ holds the CLI the e2e suite runs), the e2e tests, and the bundles. */
function buildAll() {
  const tsc = path.join(REPO, 'node_modules/typescript/bin/tsc');
  // The bundles need no type check; a type error elsewhere in the tree (others at work)
  // must not stop the demo, so it is reported, not fatal.
  const check = spawnSync(process.execPath, [tsc, '-b'], { stdio: 'inherit', cwd: REPO });
  if (check.status !== 0) console.warn('start: tsc -b reported errors (above); going on with the esbuild bundles');
  run(process.execPath, [tsc, '-b', 'test/e2e']);
  run(process.execPath, [path.join(REPO, 'scripts/build.mjs')]);
}

/** Builds the .vsix (`npm run package`, in a clean environment: see lib/cleanEnv.mjs) and returns its path. */
function packageVsix(stdio) {
  run('npm', ['run', '--silent', 'package'], { stdio, env: cleanEnv() });
  const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8'));
  return path.join(REPO, `${pkg.name}-${pkg.version}.vsix`);
}

function toolchain() {
  try {
    return installToolchain();
  } catch (err) {
    console.error(`start: ${err.message}`);
    process.exit(1);
  }
}

async function start(args) {
  const portArg = args.indexOf('--port');
  const dirArg = args.indexOf('--dir');
  const scratch = dirArg >= 0 ? path.resolve(args[dirArg + 1]) : path.join(os.tmpdir(), 'overlayws-demo');
  const t0 = Date.now();

  buildAll();
  const vsix = packageVsix('inherit');

  const workspace = prepareDemo(path.join(scratch, 'demo'));
  log(`demo overlay in ${path.dirname(workspace)}`);

  const tc = toolchain();
  const profile = makeProfile(path.join(scratch, 'profile'));
  installExtension(tc, profile, vsix);
  log(`installed ${path.basename(vsix)}`);

  const port = await freePort(portArg >= 0 ? Number(args[portArg + 1]) : 8080);
  const server = startCodeServer(tc, profile, port);
  server.stdout.resume();
  server.stderr.pipe(process.stderr);
  let exited;
  server.on('exit', (code, sig) => {
    exited = `code-server exited (${sig ?? code})`;
    log(exited);
    process.exit(code ?? 0);
  });
  const stop = () => {
    stopGroup(server.pid, 'code-server').finally(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);

  const origin = `http://127.0.0.1:${port}`;
  await waitUntilServing(origin, { abort: () => exited });
  const url = `${origin}/?workspace=${encodeURIComponent(workspace)}`;
  log(`ready in ${((Date.now() - t0) / 1000).toFixed(1)}s — open:\n\n    ${url}\n\n(Ctrl-C stops code-server)`);
}

/**
 * The e2e suite on a fresh demo overlay. With --vsix the extension under test is the
 * packaged .vsix, installed by code-server into a scratch extensions dir (proves what
 * ships: bundles, native xattr module, manifest), instead of the repo checkout.
 */
function e2e(rest) {
  buildAll();
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'overlayws-e2e-demo-'));
  const workspace = prepareDemo(path.join(scratch, 'demo'));
  const tc = toolchain();
  const extra = ['--install-dir', tc.dir];
  if (rest.includes('--vsix')) {
    rest = rest.filter((a) => a !== '--vsix');
    const vsix = packageVsix(['ignore', 'ignore', 'inherit']);
    const installed = installExtension(tc, makeProfile(path.join(scratch, 'vsix')), vsix);
    log(`testing the installed .vsix: ${path.basename(installed)}`);
    extra.push('--extension', installed);
  }
  // The suite starts on overlay:// (overlay.mount never in user settings); test/e2e/workspaceMounted.test.ts
  // turns mounting on in the workspace and goes on in the mounted folder.
  const settings = ['--setting', 'files.autoSave="off"', '--setting', 'overlay.mount="never"'];
  const r = spawnSync(process.execPath, [path.join(REPO, 'scripts/e2e/run.mjs'), '--open', workspace, ...settings, ...extra, ...rest], {
    stdio: 'inherit',
    cwd: REPO,
  });
  unmountUnder(scratch);
  if (!rest.includes('--keep')) fs.rmSync(scratch, { recursive: true, force: true });
  process.exit(r.status ?? 2);
}

/**
 * code-server is stopped by a signal, so its overlay server may not have let go of the demo's
 * mount (a window that is killed leaves it to the next start): unmount every mount whose
 * layers are under `dir` before removing it.
 */
function unmountUnder(dir) {
  let lines = [];
  try {
    lines = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
  } catch {
    return;
  }
  for (const line of lines) {
    const mountPoint = line.split(' ')[4];
    if (!mountPoint || !line.includes(dir)) continue;
    const fuse = line.includes(' - fuse.fuse-overlayfs ');
    const r = spawnSync(
      fuse && process.getuid?.() !== 0 ? 'fusermount3' : 'umount',
      fuse && process.getuid?.() !== 0 ? ['-u', '-z', mountPoint] : ['-l', mountPoint],
      { stdio: 'ignore' },
    );
    if (r.status === 0) log(`unmounted ${mountPoint} (the demo's mount, left by the stopped code-server)`);
  }
}

const args = process.argv.slice(2);
if (args[0] === '--prepare') {
  if (!args[1]) {
    console.error('usage: node scripts/start.mjs --prepare DIR');
    process.exit(2);
  }
  console.log(prepareDemo(path.resolve(args[1])));
} else if (args[0] === '--test') {
  e2e(args.slice(1));
} else {
  await start(args);
}
