#!/usr/bin/env node
// Bundles the extension for VS Code and the .vsix:
//   client/src/extension.ts -> dist/extension.js  (cjs, node, external vscode)
//   server/src/server.ts    -> dist/server.js     (cjs, node; the LSP server process)
//   server/src/holders/scanWorker.ts -> dist/holders/scanWorker.js (its worker thread)
// @napi-rs/xattr is a native N-API module: it stays external and is copied, with the
// prebuilt binary for this platform, into dist/node_modules so `require` from
// dist/server.js finds it inside the packaged extension (vsce runs with
// --no-dependencies; everything else is in the bundles).
//
//   node scripts/build.mjs [--watch] [--minify]
import * as esbuild from 'esbuild';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DIST = path.join(REPO, 'dist');
const watch = process.argv.includes('--watch');
const minify = process.argv.includes('--minify');
const require = createRequire(path.join(REPO, 'package.json'));

const common = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  sourcemap: true,
  minify,
  logLevel: 'warning',
  absWorkingDir: REPO,
};

const builds = [
  { ...common, entryPoints: ['client/src/extension.ts'], outfile: 'dist/extension.js', external: ['vscode'] },
  { ...common, entryPoints: ['server/src/server.ts'], outfile: 'dist/server.js', external: ['@napi-rs/xattr'] },
  // The holder scan's worker thread, at the path the server finds it: beside it, as in out/server/src/.
  { ...common, entryPoints: ['server/src/holders/scanWorker.ts'], outfile: 'dist/holders/scanWorker.js', external: ['@napi-rs/xattr'] },
];

/** Copies @napi-rs/xattr and its platform binary package(s) into dist/node_modules. */
function copyNativeDeps() {
  const wanted = ['@napi-rs/xattr'];
  const scope = path.join(REPO, 'node_modules/@napi-rs');
  for (const name of fs.existsSync(scope) ? fs.readdirSync(scope) : []) {
    if (name.startsWith('xattr-')) wanted.push(`@napi-rs/${name}`);
  }
  for (const name of wanted) {
    let dir;
    try {
      dir = path.dirname(require.resolve(`${name}/package.json`));
    } catch {
      console.warn(`build: ${name} not installed; kernel-format opaque dirs will be unavailable`);
      continue;
    }
    const dest = path.join(DIST, 'node_modules', name);
    fs.rmSync(dest, { recursive: true, force: true });
    fs.cpSync(dir, dest, { recursive: true, dereference: true });
  }
}

const t0 = Date.now();
fs.mkdirSync(DIST, { recursive: true });
copyNativeDeps();
if (watch) {
  for (const b of builds) {
    const ctx = await esbuild.context(b);
    await ctx.watch();
  }
  console.log('build: watching');
} else {
  await Promise.all(builds.map((b) => esbuild.build(b)));
  console.log(`build: dist/extension.js, dist/server.js, dist/holders/scanWorker.js in ${Date.now() - t0} ms`);
}
