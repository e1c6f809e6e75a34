/**
 * Skipping with a reason. mocha's `this.skip()` takes none, and a skipped test here must say
 * why (no mount permission, not root, ...): `skipBecause(this, why)` keeps the reason where
 * the reporter finds it (printed under the skipped test, and in the JSON results).
 */
import { describe, type Context, type Runnable, type Suite } from 'mocha';

const reasons = new WeakMap<Runnable | Suite, string>();

/**
 * Ends the running test as skipped, saying why. From a `beforeEach` hook it skips the test
 * about to run; from a `before` hook, every test of that suite.
 */
export function skipBecause(ctx: Context, reason: string): never {
  const runnable = ctx.runnable();
  const inHook = /^"(before|after) (all|each)" hook/.exec(runnable.title);
  const holder = !inHook ? runnable : inHook[2] === 'each' && ctx.currentTest ? ctx.currentTest : runnable.parent;
  if (holder) reasons.set(holder, reason);
  return ctx.skip();
}

/** Why `test` was skipped: its own reason, else that of the nearest suite skipped with one. */
export function skipReason(test: Runnable): string | undefined {
  if (reasons.has(test)) return reasons.get(test);
  for (let suite = test.parent; suite; suite = suite.parent) {
    if (reasons.has(suite)) return reasons.get(suite);
  }
  return undefined;
}

/**
 * `describe`, or, when `skip` gives a reason, the same suite with every test skipped for that
 * reason (its hooks do not run): node:test's `describe(title, { skip }, fn)`.
 */
export function describeOrSkip(title: string, skip: string | false | undefined, fn: (this: Suite) => void): Suite {
  if (!skip) return describe(title, fn);
  const suite = describe.skip(title, fn) as Suite | void;
  if (suite) reasons.set(suite, skip);
  return suite as Suite;
}
