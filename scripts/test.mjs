#!/usr/bin/env node
// Runs every test tier in order and prints one closing line: "tests: N passed, N failed, N skipped".
//   unit   — the engine on real temp dirs            out/test/unit
//   server — the built server over a real JSON-RPC    out/test/server
//   kernel — differential against mount -t overlay    out/test/kernel
//   oci    — exported layers checked with umoci         out/test/oci
//   safety — crashes, concurrency, hostile input       out/test/safety
//   e2e    — a real VS Code (code-server + chromium)  scripts/e2e
// OVERLAY_TEST_ONLY=unit,server limits the tiers; OVERLAY_SKIP_E2E=1 skips the e2e tier (it says so).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';

const root = new URL('..', import.meta.url).pathname;
const only = process.env.OVERLAY_TEST_ONLY?.split(',');
const totals = { passed: 0, failed: 0, skipped: 0 };
let failedTiers = [];

function files(dir) {
  const abs = join(root, dir);
  if (!existsSync(abs)) return [];
  return readdirSync(abs, { recursive: true })
    .filter((f) => f.endsWith('.test.js'))
    .map((f) => join(abs, f))
    .sort();
}

function runNodeTests(tier, dir) {
  const list = files(dir);
  if (list.length === 0) {
    console.log(`\n== ${tier}: no tests found in ${dir}`);
    return;
  }
  console.log(`\n== ${tier}: ${list.length} files`);
  const tap = join(tmpdir(), `overlayws-${tier}-${process.pid}.tap`);
  const r = spawnSync(
    process.execPath,
    [
      '--test',
      '--test-concurrency=1',
      '--test-force-exit',
      '--test-reporter=spec',
      '--test-reporter-destination=stdout',
      '--test-reporter=tap',
      `--test-reporter-destination=${tap}`,
      ...list,
    ],
    { stdio: 'inherit', cwd: root },
  );
  const text = existsSync(tap) ? readFileSync(tap, 'utf8') : '';
  rmSync(tap, { force: true });
  // Count leaf tests from the TAP test points (suites carry "type: 'suite'" in their YAML);
  // this works even when --test-force-exit ends the run before the summary lines.
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const m = lines[i].match(/^\s*(not )?ok \d+ - .*?(# (SKIP|TODO)\b.*)?$/);
    if (!m) continue;
    let suite = false;
    for (let j = i + 1; j < lines.length && !/^\s*(not )?ok \d+ /.test(lines[j]) && !/^\s*# Subtest/.test(lines[j]); j++) {
      if (/type: 'suite'/.test(lines[j])) {
        suite = true;
        break;
      }
    }
    if (suite) continue;
    if (m[3]) totals.skipped++;
    else if (m[1]) totals.failed++;
    else totals.passed++;
  }
  if (r.status !== 0) failedTiers.push(tier);
}

const want = (t) => !only || only.includes(t);
if (want('unit')) runNodeTests('unit', 'out/test/unit');
if (want('server')) runNodeTests('server', 'out/test/server');
if (want('kernel')) runNodeTests('kernel', 'out/test/kernel');
if (want('oci')) runNodeTests('oci', 'out/test/oci');
if (want('safety')) runNodeTests('safety', 'out/test/safety');
if (want('e2e')) {
  if (process.env.OVERLAY_SKIP_E2E === '1') {
    console.log('\n== e2e: skipped because OVERLAY_SKIP_E2E=1');
    totals.skipped++;
  } else {
    // The suite runs twice: on the development build, then on the packaged .vsix that
    // code-server installs. start.mjs installs what it needs (scripts/e2e/setup.sh),
    // prepares a fresh demo overlay and opens it.
    for (const variant of [[], ['--vsix']]) {
      const label = variant.length ? 'e2e (.vsix installed in code-server)' : 'e2e';
      console.log(`\n== ${label}: real VS Code (code-server) in headless chromium`);
      const log = join(tmpdir(), `overlayws-e2e-${process.pid}.log`);
      const cmd = `"${process.execPath}" "${join(root, 'scripts/start.mjs')}" --test ${variant.join(' ')} | tee "${log}"`;
      const r = spawnSync('bash', ['-o', 'pipefail', '-c', cmd], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
      const out = existsSync(log) ? readFileSync(log, 'utf8') : '';
      rmSync(log, { force: true });
      const m = out.match(/e2e: (\d+) passed, (\d+) failed(?:, (\d+) skipped)?/);
      if (m) {
        totals.passed += Number(m[1]);
        totals.failed += Number(m[2]);
        totals.skipped += Number(m[3] ?? 0);
      }
      if (r.status !== 0) {
        failedTiers.push(label);
        if (!m || Number(m[2]) === 0) totals.failed++;
      }
    }
  }
}
console.log(failedTiers.length ? `\nfailed tiers: ${failedTiers.join(', ')}` : '\nall tiers passed');
console.log(`tests: ${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
process.exit(failedTiers.length ? 1 : 0);
