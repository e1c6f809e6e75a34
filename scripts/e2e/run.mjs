#!/usr/bin/env node
// Runs the end-to-end suite in a real VS Code (code-server 4.139.1 = VS Code 1.139.1)
// driven by headless Debian chromium through playwright-core. Needs scripts/e2e/setup.sh
// first. How and why: scripts/e2e/README.md.
//
//   node scripts/e2e/run.mjs [options]
//
// The suite runs under mocha inside VS Code (test/e2e/index.ts). This driver prints the
// extension host's console (prefixed "[vscode]": mocha's spec output and the tests' logs),
// saves the screenshots the tests ask for, puts the tests module back when the window
// reloads, stops every process it started (by process group), and reads the results from
// the JSON file the reporter writes into the control directory (--json copies it out).
// Exit code: the tests' (0 pass, 1 fail), 2 on a harness error or timeout.
//
// In-VS-Code side: test/e2e/harness/protocol.ts holds the same file names as below.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as util from 'node:util';
import { CHROMIUM_PATH, launchChromium } from '../lib/chromium.mjs';
import { defaultInstallDir, freePort, isInstalled, makeProfile, startCodeServer, stopGroup, toolchainIn, waitUntilServing } from '../lib/codeServer.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '../..');

// Shared with test/e2e/harness/protocol.ts.
const CONTROL_DIR_ENV = 'OVERLAY_E2E_CONTROL_DIR';
const RESULT_FILE = 'result.json';
const STATE_FILE = 'session.json';
const SCREENSHOT_REQUEST = /^screenshot-(.*)\.request$/;
const SCREENSHOT_NAME = /^[A-Za-z0-9._-]{1,100}$/;

// Workbench chatter that reaches codeAutomationLog on every start; shown with --verbose.
const NOISE = [
  /^Resolv(ing|ed) connection token/,
  /^Creating a socket/,
  /^\[reconnection-grace-time\]/,
  /^Updating additional builtin extensions cache/,
  /^\[Service Worker\]/,
  /^\[AgentHost/,
  /^\[AccountPolicyGate\]/,
  /^Ignoring fetching additional builtin extensions from gallery/,
];

const USAGE = `usage: node scripts/e2e/run.mjs [options]
  --extension PATH     extension development path       (E2E_EXTENSION, default: repo root;
                       a throwaway stub when its package.json "main" is not built yet)
  --tests PATH         compiled tests module            (E2E_TESTS, default: out/test/e2e/index.js)
  --open TARGET        folder, .code-workspace file, or a URI like overlay:/x
                       (E2E_OPEN, default: a fresh temp folder with one file)
  --env KEY=VALUE      extension host environment, repeatable (E2E_ENV: JSON object)
  --setting KEY=JSON   extra user setting, repeatable   (E2E_SETTINGS: JSON object)
  --screenshots DIR    where screenshots go             (E2E_SCREENSHOTS, default: out/e2e-screenshots)
  --timeout SECONDS    whole-session limit              (E2E_TIMEOUT, default: 300)
  --install-dir DIR    setup.sh's output dir            (E2E_INSTALL_DIR, default: from versions.env)
  --json FILE          also write the results there     (E2E_JSON): {passed, failed, skipped, tests, exitCode, error?}
  --keep               keep the temp profile dirs       (E2E_KEEP=1)
  --verbose            also print code-server and page console output (E2E_VERBOSE=1)
  E2E_GREP=text        run only tests whose name contains text`;

function parseOptions() {
  const { values } = util.parseArgs({
    options: {
      extension: { type: 'string' },
      tests: { type: 'string' },
      open: { type: 'string' },
      env: { type: 'string', multiple: true },
      setting: { type: 'string', multiple: true },
      screenshots: { type: 'string' },
      timeout: { type: 'string' },
      'install-dir': { type: 'string' },
      json: { type: 'string' },
      keep: { type: 'boolean' },
      verbose: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const env = { ...jsonObjectFromEnv('E2E_ENV') };
  for (const kv of values.env ?? []) {
    const [k, v] = splitPair(kv, '--env');
    env[k] = v;
  }
  if (process.env.E2E_GREP) {
    env.E2E_GREP = process.env.E2E_GREP;
  }
  const settings = { ...jsonObjectFromEnv('E2E_SETTINGS') };
  for (const kv of values.setting ?? []) {
    const [k, v] = splitPair(kv, '--setting');
    try {
      settings[k] = JSON.parse(v);
    } catch {
      settings[k] = v; // a bare string
    }
  }
  const timeoutS = Number(values.timeout ?? process.env.E2E_TIMEOUT ?? 300);
  if (!(timeoutS > 0)) {
    fail(`bad --timeout ${values.timeout}`);
  }
  return {
    extension: path.resolve(values.extension ?? process.env.E2E_EXTENSION ?? REPO),
    tests: path.resolve(values.tests ?? process.env.E2E_TESTS ?? path.join(REPO, 'out/test/e2e/index.js')),
    open: values.open ?? process.env.E2E_OPEN,
    env,
    settings,
    screenshots: path.resolve(values.screenshots ?? process.env.E2E_SCREENSHOTS ?? path.join(REPO, 'out/e2e-screenshots')),
    timeoutMs: timeoutS * 1000,
    installDir: values['install-dir'] ?? process.env.E2E_INSTALL_DIR ?? defaultInstallDir(),
    json: values.json ?? process.env.E2E_JSON,
    keep: values.keep ?? process.env.E2E_KEEP === '1',
    verbose: values.verbose ?? process.env.E2E_VERBOSE === '1',
  };
}

function splitPair(kv, flag) {
  const i = kv.indexOf('=');
  if (i <= 0) {
    fail(`${flag} wants KEY=VALUE, got ${JSON.stringify(kv)}`);
  }
  return [kv.slice(0, i), kv.slice(i + 1)];
}

function jsonObjectFromEnv(name) {
  const raw = process.env[name];
  if (!raw) {
    return {};
  }
  try {
    const v = JSON.parse(raw);
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      return v;
    }
  } catch {
    // fall through
  }
  fail(`${name} must be a JSON object`);
}

function fail(message) {
  console.error(`e2e: ${message}`);
  process.exit(2);
}

const log = (msg) => console.log(`e2e: ${msg}`);
const secs = (t0) => `${((Date.now() - t0) / 1000).toFixed(1)}s`;

// ---------------------------------------------------------------------------------------

/** Resolves the extension dir; generates a stub when the real one is not built yet. */
function prepareExtension(dir, tmp) {
  const pkgFile = path.join(dir, 'package.json');
  if (!fs.existsSync(pkgFile)) {
    fail(`no package.json in extension development path ${dir}`);
  }
  const pkg = JSON.parse(fs.readFileSync(pkgFile, 'utf8'));
  if (!pkg.main || fs.existsSync(path.resolve(dir, pkg.main)) || fs.existsSync(path.resolve(dir, `${pkg.main}.js`))) {
    return dir;
  }
  const stub = path.join(tmp, 'stub-extension');
  fs.mkdirSync(stub, { recursive: true });
  fs.writeFileSync(
    path.join(stub, 'package.json'),
    JSON.stringify({
      name: 'e2e-stub',
      publisher: 'overlay-workspaces',
      version: '0.0.0',
      engines: { vscode: '^1.91.0' },
      main: './extension.js',
      activationEvents: ['onStartupFinished'],
    }),
  );
  fs.writeFileSync(path.join(stub, 'extension.js'), 'exports.activate = () => {};\nexports.deactivate = () => {};\n');
  log(`WARNING: ${path.relative(REPO, path.resolve(dir, pkg.main)) || pkg.main} is not built; using a stub extension`);
  return stub;
}

/** What to put in the URL: `folder` or `workspace`, as a path or a URI. */
function prepareOpenTarget(open, tmp) {
  if (!open) {
    const folder = path.join(tmp, 'workspace');
    fs.mkdirSync(folder, { recursive: true });
    fs.writeFileSync(path.join(folder, 'README.md'), '# e2e workspace\n\nOpened by scripts/e2e/run.mjs.\n');
    return { key: 'folder', value: folder };
  }
  const isUri = /^[A-Za-z][A-Za-z0-9+.-]+:/.test(open) && !path.isAbsolute(open);
  if (isUri) {
    return { key: open.endsWith('.code-workspace') ? 'workspace' : 'folder', value: open };
  }
  const abs = path.resolve(open);
  if (!fs.existsSync(abs)) {
    fail(`--open target does not exist: ${abs}`);
  }
  return { key: abs.endsWith('.code-workspace') ? 'workspace' : 'folder', value: abs };
}

/** Keeps the last lines of a stream for the failure report; echoes them when verbose. */
function tail(stream, prefix, verbose, keep = 60) {
  const lines = [];
  let partial = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop();
    for (const l of parts) {
      if (verbose) {
        console.log(`${prefix} ${l}`);
      }
      lines.push(l);
      if (lines.length > keep) {
        lines.shift();
      }
    }
  });
  return lines;
}

/** RSS of every process in the given process groups, in bytes (Linux /proc). */
function groupRss(pgids) {
  const page = 4096;
  const total = new Map(pgids.map((g) => [g, 0]));
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) {
      continue;
    }
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const pgrp = Number(fields[2]);
      if (total.has(pgrp)) {
        total.set(pgrp, total.get(pgrp) + Number(fields[21]) * page);
      }
    } catch {
      // the process went away
    }
  }
  return total;
}

// ---------------------------------------------------------------------------------------

async function main() {
  const opts = parseOptions();
  const t0 = Date.now();

  const tc = toolchainIn(opts.installDir);
  if (!isInstalled(tc)) {
    fail(`code-server is not installed in ${opts.installDir}; run: bash scripts/e2e/setup.sh`);
  }
  if (!fs.existsSync(CHROMIUM_PATH)) {
    fail(`${CHROMIUM_PATH} is missing; run: bash scripts/e2e/setup.sh`);
  }
  if (!fs.existsSync(opts.tests)) {
    fail(`tests module not found: ${opts.tests} (build first: npx tsc -b test/e2e)`);
  }

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'overlayws-e2e-'));
  const profile = makeProfile(path.join(tmp, 'profile'), opts.settings);
  const control = path.join(tmp, 'control');
  fs.mkdirSync(control);
  fs.mkdirSync(opts.screenshots, { recursive: true });

  const extensionDir = prepareExtension(opts.extension, tmp);
  const target = prepareOpenTarget(opts.open, tmp);

  // State shared with the cleanup path.
  const state = {
    server: undefined,
    chromium: undefined,
    peak: { total: 0, server: 0, chromium: 0 },
    sampler: undefined,
    screenshots: undefined,
  };
  let exitCode = 2;
  let harnessError;
  let cleanup$;

  // Runs once; every caller awaits the same shutdown.
  const cleanup = () => (cleanup$ ??= stopEverything());
  const stopEverything = async () => {
    clearInterval(state.sampler);
    clearInterval(state.screenshots);
    const stopChromium = async () => {
      await state.chromium?.stop();
    };
    const stopServer = async () => {
      if (state.server) {
        await stopGroup(state.server.pid, 'code-server');
      }
    };
    await Promise.all([stopChromium(), stopServer()]);
  };
  const removeTemp = () => {
    if (opts.keep) {
      log(`kept temp dirs in ${tmp}`);
    } else {
      fs.rmSync(tmp, { recursive: true, force: true, maxRetries: 3 });
    }
  };

  const onSignal = (sig) => {
    log(`${sig}: stopping`);
    cleanup().finally(() => {
      report(readResult(control), 130, `interrupted by ${sig}`);
      removeTemp();
      process.exit(130);
    });
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    // --- code-server ------------------------------------------------------------------
    const port = await freePort();
    const origin = `http://127.0.0.1:${port}`;
    const server = startCodeServer(tc, profile, port, ['--vscode-option', 'enable-smoke-test-driver']);
    state.server = server;
    let serverExit;
    server.on('exit', (code, sig) => (serverExit = `code-server exited (${sig ?? code})`));
    const serverOut = tail(server.stdout, '[code-server]', opts.verbose);
    const serverErr = tail(server.stderr, '[code-server]', opts.verbose);

    const startedAt = Date.now();
    try {
      await waitUntilServing(origin, { abort: () => serverExit });
    } catch (err) {
      console.error([...serverOut, ...serverErr].map((l) => `[code-server] ${l}`).join('\n'));
      throw err;
    }
    log(`code-server up on ${origin} in ${secs(startedAt)} (pid ${server.pid})`);

    // --- chromium -----------------------------------------------------------------------
    const chromium = await launchChromium();
    state.chromium = chromium;
    const { browser, pid: browserPid } = chromium;

    state.sampler = setInterval(() => {
      const rss = groupRss([server.pid, browserPid]);
      const s = rss.get(server.pid);
      const c = rss.get(browserPid);
      if (s + c > state.peak.total) {
        state.peak = { total: s + c, server: s, chromium: c };
      }
    }, 500);
    state.sampler.unref();

    const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
    const page = await context.newPage();

    // --- the test protocol --------------------------------------------------------------
    const remote = (p) => `vscode-remote://127.0.0.1:${port}${p}`;
    const payload = [
      ['extensionDevelopmentPath', remote(extensionDir)],
      ['extensionTestsPath', remote(opts.tests)],
      ['extensionEnvironment', JSON.stringify({ ...opts.env, [CONTROL_DIR_ENV]: control })],
    ];
    const startUrl = new URL(`${origin}/`);
    startUrl.searchParams.set(target.key, target.value);
    startUrl.searchParams.set('payload', JSON.stringify(payload));

    let resolveExit;
    const exited = new Promise((r) => (resolveExit = r));
    let finished = false;

    // Screenshots: the tests ask with a request file in the control dir; each is taken once,
    // in the order found, and answered with a .done file (empty, or the error).
    let screenshotChain = Promise.resolve();
    const taken = new Set();
    const takeScreenshot = (name) => {
      screenshotChain = screenshotChain.then(async () => {
        const done = path.join(control, `screenshot-${name}.done`);
        let error = '';
        try {
          if (!SCREENSHOT_NAME.test(name)) {
            throw new Error(`bad name ${JSON.stringify(name)}`);
          }
          const file = path.join(opts.screenshots, `${name}.png`);
          await page.screenshot({ path: file });
          log(`screenshot ${path.relative(process.cwd(), file)}`);
        } catch (err) {
          error = String(err?.message ?? err);
          log(`screenshot ${name} failed: ${error}`);
        }
        fs.rmSync(path.join(control, `screenshot-${name}.request`), { force: true });
        taken.delete(name);
        fs.writeFileSync(`${done}.tmp`, error);
        fs.renameSync(`${done}.tmp`, done);
      });
    };
    state.screenshots = setInterval(() => {
      for (const f of fs.readdirSync(control)) {
        const m = SCREENSHOT_REQUEST.exec(f);
        if (m && !taken.has(m[1])) {
          taken.add(m[1]);
          takeScreenshot(m[1]);
        }
      }
    }, 100);

    await page.exposeFunction('codeAutomationLog', (type, args) => {
      // console.log's arguments, formatted as Node does (mocha's reporter logs with %s / %d)
      const text = util.format(...(Array.isArray(args) ? args : [args]));
      for (const line of text.split('\n')) {
        if (opts.verbose || !NOISE.some((re) => re.test(line))) {
          console.log(`[vscode] ${type === 'error' || type === 'warn' ? `${type}: ` : ''}${line}`);
        }
      }
    });
    await page.exposeFunction('codeAutomationExit', (code) => {
      finished = true;
      resolveExit(Number(code));
    });

    // vscode.openFolder reloads the page and drops extensionTestsPath from the payload: put
    // it back, keeping whatever folder/workspace the new URL opens.
    page.on('framenavigated', (frame) => {
      if (finished || frame !== page.mainFrame()) {
        return;
      }
      const url = new URL(frame.url());
      if (url.origin !== origin) {
        return;
      }
      let current = [];
      try {
        current = JSON.parse(url.searchParams.get('payload') ?? '[]');
      } catch {
        // treat as empty
      }
      if (current.some(([k]) => k === 'extensionTestsPath')) {
        return;
      }
      const merged = new Map(payload);
      for (const [k, v] of current) {
        if (k !== 'extensionTestsPath') {
          merged.set(k, v);
        }
      }
      merged.set('extensionTestsPath', remote(opts.tests));
      url.searchParams.set('payload', JSON.stringify([...merged]));
      log(`page reloaded to ${frame.url().split('?')[0]}?${[...url.searchParams.keys()].join('&')}; re-injecting extensionTestsPath`);
      page.goto(url.toString()).catch((err) => {
        if (!finished) {
          log(`re-navigation failed: ${err.message}`);
        }
      });
    });

    // A reload with unsaved state asks "leave site?": leave, as a user closing the tab would
    // (VS Code keeps backups). Any other dialog is logged and dismissed.
    page.on('dialog', (d) => {
      if (d.type() === 'beforeunload') {
        d.accept().catch(() => {});
      } else {
        log(`dismissed ${d.type()} dialog: ${d.message()}`);
        d.dismiss().catch(() => {});
      }
    });

    let pageProblem;
    page.on('crash', () => (pageProblem = 'the page crashed'));
    browser.on('disconnected', () => (pageProblem ??= 'chromium disconnected'));
    if (opts.verbose) {
      page.on('console', (m) => console.log(`[page:${m.type()}] ${m.text()}`));
      page.on('pageerror', (e) => console.log(`[page:error] ${e.message}`));
    }

    const sessionAt = Date.now();
    await page.goto(startUrl.toString());
    log(`workbench loading (${target.key}=${target.value})`);

    const remaining = opts.timeoutMs - (Date.now() - t0);
    let timer;
    const watchdog = new Promise((_, reject) => {
      timer = setInterval(() => {
        const reason = serverExit ?? pageProblem;
        if (reason) {
          reject(new Error(reason));
        }
      }, 250);
      setTimeout(() => reject(new Error(`timed out after ${opts.timeoutMs / 1000}s`)), remaining).unref();
    });
    try {
      exitCode = await Promise.race([exited, watchdog]);
    } finally {
      clearInterval(timer);
    }
    await screenshotChain;
    log(`tests exited with code ${exitCode} after ${secs(sessionAt)} in the workbench`);
  } catch (err) {
    exitCode = 2;
    harnessError = `harness error: ${err.message}`;
    log(harnessError);
  } finally {
    await cleanup();
  }

  const mib = (b) => Math.round(b / 2 ** 20);
  if (state.peak.total > 0) {
    log(`peak memory ${mib(state.peak.total)} MiB (code-server ${mib(state.peak.server)} MiB, chromium ${mib(state.peak.chromium)} MiB)`);
  }
  log(`session took ${secs(t0)}`);
  process.exitCode = report(readResult(control), exitCode, harnessError);
  removeTemp();

  /**
   * Prints the summary line, writes --json, and returns the exit code: a run that ended
   * without results, or with an exit code the results do not explain, counts one failure.
   */
  function report(result, code, error) {
    const out = { passed: 0, failed: 0, skipped: 0, tests: [], ...result, exitCode: code };
    if (!result || result.partial) {
      out.error = error ?? `the suite ended (exit code ${code}) without writing ${RESULT_FILE}`;
    } else if (error) {
      out.error = error;
    }
    if (result?.partial) {
      // the run ended before the reporter's summary: name the failures here
      for (const t of out.tests.filter((x) => x.outcome === 'failed')) {
        console.log(`e2e: failed: ${t.title}\n${t.error}`);
      }
    }
    if (code === 0 && out.failed > 0) {
      out.exitCode = 1;
    }
    if (out.exitCode !== 0 && out.failed === 0) {
      log(`the suite failed outside any test: ${out.error ?? `exit code ${code}`}`);
    }
    if (opts.json) {
      fs.writeFileSync(opts.json, `${JSON.stringify(out, null, 2)}\n`);
    }
    console.log(`e2e: ${out.passed} passed, ${Math.max(out.failed, out.exitCode === 0 ? 0 : 1)} failed, ${out.skipped} skipped`);
    return out.exitCode;
  }
}

/**
 * The reporter's results from the control dir; when the run ended before writing them (a
 * timeout, a crash), what the session file had recorded so far, marked partial; else undefined.
 */
function readResult(control) {
  const read = (f) => {
    try {
      return JSON.parse(fs.readFileSync(path.join(control, f), 'utf8'));
    } catch {
      return undefined;
    }
  };
  const result = read(RESULT_FILE);
  if (result) {
    return result;
  }
  const tests = read(STATE_FILE)?.finished;
  if (!Array.isArray(tests)) {
    return undefined;
  }
  const count = (o) => tests.filter((t) => t.outcome === o).length;
  return { passed: count('passed'), failed: count('failed'), skipped: count('skipped'), tests, partial: true };
}

main().catch((err) => {
  console.error(`e2e: ${err.stack ?? err}`);
  process.exitCode = 2;
});
