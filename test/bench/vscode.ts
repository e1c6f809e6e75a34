/**
 * The real-VS-Code figure (issue 17): code-server (the e2e toolchain) and headless chromium
 * open a big stack as an `overlay:` workspace folder, and the same tree as a plain `file:`
 * folder (the stack's kernel mount) in the same code-server — each in a fresh window, a few
 * times. Every time comes from a clock, none is guessed:
 *   - the page: navigation start (performance.timeOrigin), the first explorer rows under the
 *     folder and the first rows under the expanded 10 000-entry directory (a MutationObserver,
 *     Date.now()), the mousedown of the click that expands it;
 *   - the extension host's log: when it starts, when it activates the extension;
 *   - the extension's log ("Overlay Server" channel): activate() done, the server running with
 *     the overlay open (spawn + initialize, which opens the configured overlays), the first
 *     listing of the overlay's root and its round trip.
 * code-server and chromium come from scripts/lib (the same launch code as `npm start` and
 * the e2e driver); the extension is this checkout's bundles, minified as the .vsix ships them,
 * loaded as a development extension, as the e2e suite loads it.
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import type { Row } from './figures';
import { buildStack, median, mountKernel, settled, type BenchStack } from './stacks';

const REPO = path.resolve(__dirname, '../../..');
const EXTENSION_ID = 'overlay-workspaces.overlay-workspaces';
/** Entries in the directory the benchmark expands. */
const BIG = 10_000;
const BIG_DIR = 'big';
/** How long one window may take to show what is measured before the run is a failure. */
const STEP_TIMEOUT_MS = 120_000;

// scripts/lib/*.mjs, typed for what this file uses.
interface Toolchain {
  dir: string;
  node: string;
  entry: string;
}
interface Profile {
  root: string;
  userData: string;
}
interface CodeServerLib {
  defaultInstallDir(): string;
  toolchainIn(dir: string): Toolchain;
  isInstalled(tc: Toolchain): boolean;
  makeProfile(root: string, settings?: Record<string, unknown>): Profile;
  startCodeServer(tc: Toolchain, profile: Profile, port: number, args?: string[]): ChildProcess;
  waitUntilServing(origin: string, opts?: { timeoutMs?: number; abort?: () => string | undefined }): Promise<void>;
  freePort(wanted?: number): Promise<number>;
  stopGroup(pid: number | undefined, name: string, graceMs?: number): Promise<void>;
}
interface Chromium {
  browser: Browser;
  pid: number;
  stop: () => Promise<void>;
}
interface ChromiumLib {
  CHROMIUM_PATH: string;
  launchChromium(): Promise<Chromium>;
}
const lib = async <T>(name: string): Promise<T> => (await import(pathToFileURL(path.join(REPO, 'scripts/lib', name)).href)) as T;

/** One window's timeline, in ms since the epoch (undefined: not seen). */
interface Timeline {
  navigation: number;
  exthostStart?: number;
  activationStart?: number;
  /** activate() began (after the extension's module was loaded), and how long it ran. */
  activateAt?: number;
  activateMs?: number;
  serverRunning?: number;
  /** The extension's own figures: spawn → running, the first root listing's round trip. */
  serverStartMs?: number;
  firstListingAt?: number;
  firstListingMs?: number;
  /** The listing of /big: answered at, round trip. */
  bigListingAt?: number;
  bigListingMs?: number;
  rootRows: number;
  clickAt: number;
  childRows: number;
}
type LogTimes = Omit<Timeline, 'navigation' | 'rootRows' | 'clickAt' | 'childRows'>;

export async function vscodeFigures(root: string, files: number, layers: number, runs: number, log: (s: string) => void): Promise<Row[]> {
  const cs = await lib<CodeServerLib>('codeServer.mjs');
  const cr = await lib<ChromiumLib>('chromium.mjs');
  const tc = cs.toolchainIn(cs.defaultInstallDir());
  const missing = !cs.isInstalled(tc)
    ? `code-server is not installed in ${tc.dir} (bash scripts/e2e/setup.sh installs it)`
    : !fs.existsSync(cr.CHROMIUM_PATH)
      ? `${cr.CHROMIUM_PATH} is missing (bash scripts/e2e/setup.sh installs it)`
      : undefined;
  if (missing) {
    log(`vscode: skipped: ${missing}`);
    return [{ figure: `real VS Code: skipped, ${missing}`, baseline: '—', base: NaN, ours: NaN, unit: 'ms', target: 'report' }];
  }
  // The extension as the e2e suite loads it, with the bundles as the .vsix ships them (minified): this checkout's, built now.
  const built = spawnSync(process.execPath, [path.join(REPO, 'scripts/build.mjs'), '--minify'], { cwd: REPO, stdio: ['ignore', 'ignore', 'inherit'] });
  if (built.status !== 0) throw new Error(`scripts/build.mjs failed (${built.signal ?? built.status})`);

  const t0 = Date.now();
  const s = buildVscodeStack(path.join(root, `vscode-${files}`), files, layers);
  log(`vscode: stack of ${s.files} files over ${layers} lowers + upper, /${BIG_DIR} with ${BIG} entries (built in ${((Date.now() - t0) / 1000).toFixed(0)} s)`);
  const k = mountKernel(s, 'merged');
  if (typeof k === 'string') log(`vscode: no file: baseline: ${k}`);
  const dir = path.join(root, 'vscode-session');
  let server: ChildProcess | undefined;
  let chromium: Chromium | undefined;
  try {
    fs.mkdirSync(dir, { recursive: true });
    const overlayWs = writeWorkspace(path.join(dir, 'overlay.code-workspace'), {
      folders: [{ uri: 'overlay://bench/', name: 'bench' }],
      settings: { 'overlay.overlays': { bench: { lower: s.lower, upper: s.upper, work: s.work, whiteouts: 'kernel' } } },
    });
    const fileWs = typeof k === 'string' ? undefined : writeWorkspace(path.join(dir, 'file.code-workspace'), { folders: [{ path: k.dir, name: 'bench' }] });
    await settled(s);

    // A quiet profile; the overlay stays overlay:// (mounting would make it a file: folder).
    // BENCH_VSCODE_TRACE=1: the extension traces its messages, and each overlay window's log is printed (where the time goes, in detail).
    const trace = process.env.BENCH_VSCODE_TRACE === '1';
    const profile = cs.makeProfile(path.join(dir, 'profile'), {
      'overlay.mount': 'never',
      'files.autoSave': 'off',
      ...(trace ? { 'overlay.trace.server': 'messages' } : {}),
    });
    const port = await cs.freePort();
    const origin = `http://127.0.0.1:${port}`;
    // A closed window's extension host (and with it the overlay server) ends 2 s after the page goes.
    const srv = cs.startCodeServer(tc, profile, port, ['--vscode-option', 'enable-smoke-test-driver', '--reconnection-grace-time', '2']);
    server = srv;
    let serverExit: string | undefined;
    srv.on('exit', (code, sig) => (serverExit = `code-server exited (${sig ?? code})`));
    srv.stdout?.resume();
    srv.stderr?.resume();
    await cs.waitUntilServing(origin, { abort: () => serverExit });
    chromium = await cr.launchChromium();
    const payload = JSON.stringify([['extensionDevelopmentPath', `vscode-remote://127.0.0.1:${port}${REPO}`]]);
    const url = (workspace: string): string => `${origin}/?workspace=${encodeURIComponent(workspace)}&payload=${encodeURIComponent(payload)}`;
    const overlay: Timeline[] = [];
    const plain: Timeline[] = [];
    for (const [kind, ws, out] of [
      ['overlay', overlayWs, overlay],
      ['file', fileWs, plain],
    ] as const) {
      for (let i = 0; ws && i < runs; i++) {
        const t = await openWindow(chromium.browser, url(ws), profile.userData, kind === 'overlay');
        log(`vscode: ${kind} window ${i + 1}: ${describe(t)}`);
        if (trace) log(`vscode: the logs of that window:\n${windowLogs(profile.userData, t.navigation)}`);
        out.push(t);
        await windowGone(srv.pid as number, () => serverExit);
      }
    }
    return rows(s.files, overlay, plain);
  } finally {
    await chromium?.stop();
    await cs.stopGroup(server?.pid, 'code-server');
    if (typeof k !== 'string') k.unmount();
    fs.rmSync(s.root, { recursive: true, force: true });
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** buildStack's tree with `files` files in all, `BIG` of them in one directory /big (most in the bottom lower, every 50th in the upper). */
function buildVscodeStack(root: string, files: number, layers: number): BenchStack {
  const s = buildStack(root, Math.max(0, files - BIG), layers);
  const bottom = s.lower[s.lower.length - 1];
  for (const d of [bottom, s.upper]) fs.mkdirSync(path.join(d, BIG_DIR));
  for (let i = 0; i < BIG; i++) {
    const layer = i % 50 === 0 ? s.upper : bottom;
    fs.writeFileSync(path.join(layer, BIG_DIR, `e${String(i).padStart(5, '0')}.txt`), `entry ${i}\n`);
  }
  return { ...s, files: s.files + BIG, builtAt: Date.now() };
}

function writeWorkspace(file: string, ws: unknown): string {
  fs.writeFileSync(file, `${JSON.stringify(ws, null, 2)}\n`);
  return file;
}

/**
 * A fresh window (browser context) on `url`: waits for the folder's first rows in the
 * explorer, clicks /big, waits for its first child rows; then reads the logs the window
 * wrote, and closes it.
 */
async function openWindow(browser: Browser, url: string, userData: string, isOverlay: boolean): Promise<Timeline> {
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  try {
    const page = await context.newPage();
    await page.addInitScript(PAGE_PROBE);
    const started = Date.now();
    await page.goto(url);
    const rootRows = await rowsAt(page, 2);
    const navigation = Math.round(await page.evaluate(() => performance.timeOrigin));
    const big = page.locator('.explorer-folders-view .monaco-list-row[aria-level="2"]').filter({ hasText: new RegExp(`^${BIG_DIR}$`) });
    await big.waitFor({ timeout: STEP_TIMEOUT_MS });
    const children = rowsAt(page, 3);
    await big.click();
    const childRows = await children;
    const clickAt = (await page.evaluate('window.__benchMousedown')) as number;
    const logs = readLogs(userData, started);
    return { navigation, ...(isOverlay ? logs : { exthostStart: logs.exthostStart }), rootRows, clickAt, childRows };
  } finally {
    await context.close();
  }
}

/** In every page: the time of the first mousedown, and a waiter for the first explorer row at a level. */
const PAGE_PROBE = `
  window.__benchMousedown = 0;
  window.addEventListener('mousedown', () => { if (!window.__benchMousedown) window.__benchMousedown = Date.now(); }, true);
  window.__benchRows = (level) => new Promise((resolve) => {
    const sel = '.explorer-folders-view .monaco-list-row[aria-level="' + level + '"]';
    const seen = () => document.querySelector(sel) !== null;
    if (seen()) return resolve(Date.now());
    const obs = new MutationObserver(() => { if (seen()) { obs.disconnect(); resolve(Date.now()); } });
    obs.observe(document, { childList: true, subtree: true, attributes: true, attributeFilter: ['aria-level'] });
  });
`;

/** Date.now() in the page when the first explorer row at `level` appeared (at once if there is one). */
async function rowsAt(page: Page, level: number): Promise<number> {
  const at = page.evaluate(`window.__benchRows(${level})`) as Promise<number>;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no explorer rows at level ${level} within ${STEP_TIMEOUT_MS / 1000} s`)), STEP_TIMEOUT_MS);
  });
  try {
    return await Promise.race([at, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A log line's time: "2026-11-30 12:00:01.234 [info] ..." in local time. */
function lineTime(line: string): number | undefined {
  const m = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d\.\d{3}) /.exec(line);
  return m ? new Date(`${m[1]}T${m[2]}`).getTime() : undefined;
}

/** Files under `dir` whose name passes `want`. */
function findFiles(dir: string, want: (name: string) => boolean, out: string[] = []): string[] {
  if (!fs.existsSync(dir)) return out;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) findFiles(p, want, out);
    else if (want(e.name)) out.push(p);
  }
  return out;
}

/**
 * The earliest line of any of `files` logged at or after `since` that matches `re`, with its
 * time: the one the message gives ("(at <ISO time>)", the extension's timeline lines: an output
 * channel stamps the lines logged before it was ready when it writes them), else the line's.
 */
function firstLine(files: string[], since: number, re: RegExp): { at: number; m: RegExpExecArray } | undefined {
  let best: { at: number; m: RegExpExecArray } | undefined;
  for (const f of files) {
    for (const line of fs.readFileSync(f, 'utf8').split('\n')) {
      const logged = lineTime(line);
      const m = logged !== undefined && logged >= since ? re.exec(line) : null;
      if (!m) continue;
      const own = /\(at (\d{4}-\d\d-\d\dT[\d:.]+Z)\)/.exec(line);
      const at = own ? Date.parse(own[1]) : (logged as number);
      if (!best || at < best.at) best = { at, m };
    }
  }
  return best;
}

/** What the extension host and the extension logged for the window opened at `since`. */
function readLogs(userData: string, since: number): LogTimes {
  const logs = path.join(userData, 'logs');
  const exthost = findFiles(logs, (n) => /exthost\.log$/.test(n));
  const ours = findFiles(logs, (n) => n.endsWith('Overlay Server.log'));
  const start = firstLine(exthost, since, /.*/);
  const act = firstLine(exthost, since, new RegExp(`ExtensionService#_doActivateExtension ${EXTENSION_ID.replace('.', '\\.')}\\b`));
  const activated = firstLine(ours, since, /\[client\] activated in (\d+) ms/);
  const running = firstLine(ours, since, /\[client\] server running (\d+) ms after start/);
  const listing = firstLine(ours, since, /\[client\] first listing of overlay:\/\/bench\/: \d+ entries in (\d+) ms/);
  const big = firstLine(ours, since, new RegExp(`\\[client\\] listing of overlay://bench/${BIG_DIR}: \\d+ entries in (\\d+) ms`));
  return {
    exthostStart: start?.at,
    activationStart: act?.at,
    activateAt: activated?.at,
    activateMs: activated ? Number(activated.m[1]) : undefined,
    serverRunning: running?.at,
    serverStartMs: running ? Number(running.m[1]) : undefined,
    firstListingAt: listing?.at,
    firstListingMs: listing ? Number(listing.m[1]) : undefined,
    bigListingAt: big?.at,
    bigListingMs: big ? Number(big.m[1]) : undefined,
  };
}

/** The lines of the extension host's and the extension's logs from `since` on, in time order. */
function windowLogs(userData: string, since: number): string {
  const files = findFiles(path.join(userData, 'logs'), (n) => /exthost\.log$/.test(n) || n.endsWith('Overlay Server.log'));
  const lines: { at: number; text: string }[] = [];
  for (const f of files) {
    for (const text of fs.readFileSync(f, 'utf8').split('\n')) {
      const at = lineTime(text);
      if (at !== undefined && at >= since) lines.push({ at, text: `${path.basename(f)}: ${text.slice(0, 300)}` });
    }
  }
  return lines
    .sort((a, b) => a.at - b.at)
    .map((l) => l.text)
    .join('\n');
}

/** Waits (60 s at most) until code-server runs no extension host: the closed window's, with its overlay server, has ended. */
async function windowGone(pgid: number, exited: () => string | undefined): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const why = exited();
    if (why) throw new Error(why);
    if (groupCommands(pgid).every((c) => !/extensionHost|dist\/server\.js/.test(c))) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`a closed window's extension host still runs after 60 s: ${groupCommands(pgid).join(' | ')}`);
}

/** Command lines of the processes in process group `pgid`. */
function groupCommands(pgid: number): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]) !== pgid) continue;
      out.push(fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' '));
    } catch {
      // gone
    }
  }
  return out;
}

const span = (a: number | undefined, b: number | undefined): number => (a === undefined || b === undefined ? NaN : b - a);

function describe(t: Timeline): string {
  return [
    `page → exthost ${span(t.navigation, t.exthostStart)} ms`,
    `→ activation +${span(t.exthostStart, t.activationStart)}`,
    `module load ${span(t.activationStart, t.activateAt)}`,
    `activate() ${t.activateMs ?? 'n/a'}`,
    `→ server running ${t.serverStartMs ?? 'n/a'} ms after its start, at +${span(t.activationStart, t.serverRunning)}`,
    `→ first root listing +${span(t.serverRunning, t.firstListingAt)} (round trip ${t.firstListingMs ?? 'n/a'})`,
    `→ root rows +${span(t.firstListingAt, t.rootRows)}`,
    `root rows ${span(t.activationStart, t.rootRows)} after activation, ${span(t.navigation, t.rootRows)} after page load`,
    `expand /${BIG_DIR} ${span(t.clickAt, t.childRows)} ms (listing answered at +${span(t.clickAt, t.bigListingAt)}, round trip ${t.bigListingMs ?? 'n/a'})`,
  ].join(', ');
}

function rows(files: number, overlay: Timeline[], plain: Timeline[]): Row[] {
  const med = (ts: Timeline[], f: (t: Timeline) => number): number => (ts.length ? median(ts.map(f)) : NaN);
  const n = `${files} files`;
  const runs = `median of ${overlay.length} windows`;
  const fileBase = plain.length ? 'the same tree as a file: folder (its kernel mount)' : '— (no file: baseline)';
  const out: Row[] = [];
  const add = (figure: string, baseline: string, base: number, ours: number, target: string, limit?: number): void => {
    out.push({
      figure,
      baseline,
      base,
      ours,
      unit: 'ms',
      target,
      ratio: base > 0 ? ours / base : undefined,
      pass: limit === undefined || !Number.isFinite(ours) ? undefined : ours <= limit,
    });
  };
  add(
    `real VS Code: extension activation → explorer shows the overlay's root, ${n} (${runs})`,
    '—',
    NaN,
    med(overlay, (t) => span(t.activationStart, t.rootRows)),
    '≤ 2000 ms',
    2000,
  );
  add(
    `real VS Code: click → first rows of a ${BIG}-entry directory, ${n} (${runs})`,
    fileBase,
    med(plain, (t) => span(t.clickAt, t.childRows)),
    med(overlay, (t) => span(t.clickAt, t.childRows)),
    '≤ 300 ms',
    300,
  );
  add(
    `real VS Code: page load → explorer shows the root, ${n} (${runs})`,
    fileBase,
    med(plain, (t) => span(t.navigation, t.rootRows)),
    med(overlay, (t) => span(t.navigation, t.rootRows)),
    'report',
  );
  add(
    `real VS Code: page load → extension host started (${runs})`,
    fileBase,
    med(plain, (t) => span(t.navigation, t.exthostStart)),
    med(overlay, (t) => span(t.navigation, t.exthostStart)),
    'report',
  );
  add(
    `real VS Code: extension host started → activation of the extension (${runs})`,
    '—',
    NaN,
    med(overlay, (t) => span(t.exthostStart, t.activationStart)),
    'report',
  );
  add(
    `real VS Code: activation → activate() called (loading the extension's bundle; ${runs})`,
    '—',
    NaN,
    med(overlay, (t) => span(t.activationStart, t.activateAt)),
    'report',
  );
  add(
    `real VS Code: activate() (${runs})`,
    '—',
    NaN,
    med(overlay, (t) => t.activateMs ?? NaN),
    'report',
  );
  add(
    `real VS Code: overlay server spawn → running with the overlay open (initialize opens it; ${runs})`,
    '—',
    NaN,
    med(overlay, (t) => t.serverStartMs ?? NaN),
    'report',
  );
  add(
    `real VS Code: server running → first root listing answered (round trip ${med(overlay, (t) => t.firstListingMs ?? NaN)} ms; ${runs})`,
    '—',
    NaN,
    med(overlay, (t) => span(t.serverRunning, t.firstListingAt)),
    'report',
  );
  add(
    `real VS Code: first root listing answered → rows in the explorer (${runs})`,
    '—',
    NaN,
    med(overlay, (t) => span(t.firstListingAt, t.rootRows)),
    'report',
  );
  const first = overlay[0];
  if (first) {
    add(
      `real VS Code: the first window after code-server started: page load → root rows (activation → root rows ${span(first.activationStart, first.rootRows)} ms)`,
      '—',
      NaN,
      span(first.navigation, first.rootRows),
      'report',
    );
  }
  return out;
}
