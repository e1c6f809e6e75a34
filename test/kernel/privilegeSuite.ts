/** The privilege suite's shape (describe/it), shared by the root and the unprivileged tier. */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'mocha';
import { describeOrSkip } from '../mocha/skip';
import {
  buildCase,
  copyCase,
  leftOut,
  ROUTES,
  runKernel,
  runRoute,
  scratch,
  startServer,
  type Case,
  type Outcome,
  type Server,
  type Writer,
} from './privileges';

/**
 * The suite for `cases` written by `writer`: per case the kernel reference once, then one test
 * per route that must end exactly like it. Without a kernel overlay here, everything is skipped
 * and says why.
 */
export function describeCases(title: string, cases: Case[], writer: Writer): void {
  const where = scratch('privileges');
  const skip = where.unavailable ?? (writer && process.getuid?.() !== 0 ? 'only root can run the writer as another user' : undefined);
  describeOrSkip(title, skip, () => {
    let server: Server | undefined;
    before(async () => {
      server = await startServer({}, writer ?? {});
    });
    after(async () => {
      await server?.stop();
      fs.rmSync(where.dir, { recursive: true, force: true });
    });
    cases.forEach((c, i) => {
      const routes = ROUTES.filter((r) => !leftOut(r, c));
      const out = ROUTES.filter((r) => leftOut(r, c)).map((r) => `${r}: ${leftOut(r, c)}`);
      describe(out.length ? `${c.name} (not through ${out.join('; ')})` : c.name, () => {
        const base = path.join(where.dir, `c${i}`);
        let ref: Outcome;
        before(async () => {
          buildCase(c, path.join(base, 'built'), writer);
          ref = await runKernel(copyCase(path.join(base, 'built'), path.join(base, 'kernel'), c.lower.length), c.ops, writer);
        });
        for (const route of routes) {
          it(`${route} ends as the kernel does`, async () => {
            const d = copyCase(path.join(base, 'built'), path.join(base, route), c.lower.length);
            const got = await runRoute(route, d, c.ops, writer, server as Server);
            assert.deepEqual(got.results, ref.results, 'outcome of each operation');
            assert.deepEqual(got.upper, ref.upper, 'the raw upper directory');
            assert.deepEqual(got.merged, ref.merged, 'the merged view');
          });
        }
      });
    });
  });
  if (skip) fs.rmSync(where.dir, { recursive: true, force: true });
}
