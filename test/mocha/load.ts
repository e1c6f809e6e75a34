/**
 * Loading test files into one mocha run, each file in a suite of its own.
 *
 * mocha runs every file of a run in one process, and a hook at a file's top level would
 * belong to the root suite: a `before` of one file would run before every file, an
 * `afterEach` after every test of the tier. Each file's top level becomes its own suite
 * (titled with the file's name), so its hooks apply to it alone, as they did when every file
 * ran on its own (node:test), and the output says which file a test is in.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import Mocha from 'mocha';

const { EVENT_FILE_POST_REQUIRE, EVENT_FILE_PRE_REQUIRE, EVENT_FILE_REQUIRE } = Mocha.Suite.constants;

/**
 * The compiled `*.test.js` files under `outDir`, sorted. With `srcDir`, outputs whose
 * `.ts` source is gone are left out (`tsc -b` does not delete them).
 */
export function testFiles(outDir: string, srcDir?: string): string[] {
  if (!fs.existsSync(outDir)) return [];
  return fs
    .readdirSync(outDir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.test.js'))
    .filter((f) => !srcDir || !fs.existsSync(srcDir) || fs.existsSync(path.join(srcDir, f.replace(/\.js$/, '.ts'))))
    .sort()
    .map((f) => path.join(outDir, f));
}

/** Requires each file inside a suite named after it (its path relative to `base`). */
export function loadPerFile(mocha: Mocha, files: readonly string[], base: string): void {
  const root = mocha.suite;
  const context = globalThis as unknown as Mocha.MochaGlobals;
  for (const file of files) {
    // What mocha's own loadFiles does per file; the interface (bdd) puts describe/it/hooks
    // on the context, and `import { it } from 'mocha'` reaches the same functions.
    root.emit(EVENT_FILE_PRE_REQUIRE, context, file, mocha);
    context.describe(path.relative(base, file), () => {
      // require, not import(): CommonJS output, and inside VS Code the `vscode` module is
      // provided by hooking require.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      root.emit(EVENT_FILE_REQUIRE, require(file), file, mocha);
    });
    root.emit(EVENT_FILE_POST_REQUIRE, context, file, mocha);
  }
}
