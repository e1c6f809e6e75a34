#!/usr/bin/env node
// Runs every test tier in order and prints one closing line: "tests: N passed, N failed, N skipped".
// Every tier runs on mocha; the counts come from the JSON results each run writes
// (test/mocha/reporter.ts), the log is mocha's spec output.
//   unit   — the engine on real temp dirs            out/test/unit     mocha in Node
//   server — the built server over a real JSON-RPC    out/test/server   mocha in Node
//   kernel — differential against mount -t overlay    out/test/kernel   mocha in Node
//   oci    — exported layers checked with umoci         out/test/oci      mocha in Node
//   safety — crashes, concurrency, hostile input       out/test/safety   mocha in Node
//   e2e    — a real VS Code (code-server + chromium)  scripts/e2e       mocha inside VS Code
// OVERLAY_TEST_ONLY=unit,server limits the tiers; OVERLAY_SKIP_E2E=1 skips the e2e tier (it says so).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';

const root = new URL('..', import.meta.url).pathname;
const only = process.env.OVERLAY_TEST_ONLY?.split(',');
const totals = { passed: 0, failed: 0, skipped: 0 };
const failedTiers = [];
const results = mkdtempSync(join(tmpdir(), 'overlayws-results-'));

// Default timeout of each test and hook per tier (a test may set its own with .timeout());
// mocha's 2 s would cut real work short. `exit`: end the process when the run is over even if
// something is still open, as --test-force-exit did under node:test — only the safety tier
// needs it (the crash suite's killed servers leave the event loop alive); the others end by
// themselves, so a leak there shows.
const MIN = 60_000;
const TIERS = [
  { tier: 'unit', timeout: 20_000 },
  { tier: 'server', timeout: MIN },
  { tier: 'kernel', timeout: 10 * MIN },
  { tier: 'oci', timeout: 2 * MIN },
  { tier: 'safety', timeout: 10 * MIN, exit: true },
];

/** The JSON a run wrote, or undefined when it wrote none (it crashed before the end). */
function readResult(file) {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

/** Adds a run's results to the totals; a run that failed without a failed test counts one. */
function count(label, status, result) {
  if (result) {
    totals.passed += result.passed;
    totals.failed += result.failed;
    totals.skipped += result.skipped;
  }
  if (status !== 0 || !result || result.failed > 0) {
    failedTiers.push(label);
    if (!result || result.failed === 0) {
      totals.failed++;
      console.log(`${label}: failed outside any test (${result?.error ?? (result ? `exit ${status}` : 'no results written')})`);
    }
  }
}

const want = (t) => !only || only.includes(t);
for (const { tier, timeout, exit } of TIERS) {
  if (!want(tier)) continue;
  console.log(`\n== ${tier}: mocha, out/test/${tier}`);
  const output = join(results, `${tier}.json`);
  const r = spawnSync(
    process.execPath,
    [join(root, 'out/test/mocha/runTier.js'), '--output', output, '--timeout', String(timeout), ...(exit ? ['--exit'] : []), join(root, 'out/test', tier)],
    { stdio: 'inherit', cwd: root },
  );
  const result = readResult(output);
  if (result && result.tests.length === 0) console.log(`== ${tier}: no tests found in out/test/${tier}`);
  count(tier, r.status, result);
}
if (want('e2e')) {
  if (process.env.OVERLAY_SKIP_E2E === '1') {
    console.log('\n== e2e: skipped because OVERLAY_SKIP_E2E=1');
    totals.skipped++;
  } else {
    // The suite runs twice: on the development build, then on the packaged .vsix that
    // code-server installs. start.mjs installs what it needs (scripts/e2e/setup.sh),
    // prepares a fresh demo overlay and opens it; run.mjs writes the results to --json.
    for (const variant of [[], ['--vsix']]) {
      const label = variant.length ? 'e2e (.vsix installed in code-server)' : 'e2e';
      console.log(`\n== ${label}: mocha inside a real VS Code (code-server) in headless chromium`);
      const output = join(results, `e2e${variant.length ? '-vsix' : ''}.json`);
      const r = spawnSync(process.execPath, [join(root, 'scripts/start.mjs'), '--test', ...variant, '--json', output], {
        cwd: root,
        stdio: ['ignore', 'inherit', 'inherit'],
      });
      count(label, r.status, readResult(output));
    }
  }
}
rmSync(results, { recursive: true, force: true });
console.log(failedTiers.length ? `\nfailed tiers: ${failedTiers.join(', ')}` : '\nall tiers passed');
console.log(`tests: ${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
process.exit(failedTiers.length ? 1 : 0);
