#!/usr/bin/env node
// Runs before `npm start` and `npm test` (prestart, pretest): installs the dependencies with
// `npm ci` when node_modules is missing or older than package-lock.json, so both commands
// work from a clean clone. npm writes node_modules/.package-lock.json at the end of every
// install; when it is at least as new as package-lock.json there is nothing to do, and the
// check costs two stat calls. Uses nothing but Node, since it runs before anything is installed.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cleanEnv } from './lib/cleanEnv.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const mtime = (f) => fs.statSync(path.join(REPO, f), { throwIfNoEntry: false })?.mtimeMs;

const installed = mtime('node_modules/.package-lock.json');
const wanted = mtime('package-lock.json');
if (installed !== undefined && wanted !== undefined && installed >= wanted) process.exit(0);

const why = installed === undefined ? 'node_modules is missing' : 'package-lock.json is newer than node_modules';
console.log(`ensure-deps: ${why}; npm ci`);
const t0 = Date.now();
const r = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: REPO, stdio: 'inherit', env: cleanEnv() });
if (r.status !== 0) {
  console.error(`ensure-deps: npm ci failed (${r.error?.message ?? r.signal ?? `exit ${r.status}`})`);
  process.exit(1);
}
console.log(`ensure-deps: installed in ${((Date.now() - t0) / 1000).toFixed(1)}s`);
