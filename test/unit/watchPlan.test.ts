/**
 * Watching a layer in pieces (server/src/watchPlan.ts): every directory is covered
 * exactly once, no piece exceeds the budget unless one directory alone does, and a
 * watcher started in pieces still reports changes everywhere — in directories watched
 * alone, inside subtrees, and in directories made after it started.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'mocha';
import { Overlay } from '../../server/src/overlay';
import { OverlayWatcher } from '../../server/src/watcher';
import { planWatches } from '../../server/src/watchPlan';

function tree(root: string, seed: number): string[] {
  let s = seed;
  const rand = (n: number): number => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s % n;
  };
  const dirs = [root];
  fs.mkdirSync(root, { recursive: true });
  for (let i = 0; i < 120; i++) {
    const parent = dirs[rand(dirs.length)];
    if (rand(3) === 0) {
      const d = path.join(parent, `d${i}`);
      fs.mkdirSync(d);
      dirs.push(d);
    } else for (let j = rand(12); j >= 0; j--) fs.writeFileSync(path.join(parent, `f${i}-${j}`), '');
  }
  return dirs;
}

test('planWatches covers every directory once, within the budget', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ovlws-plan-'));
  try {
    for (const budget of [1, 5, 20, 60, 10_000]) {
      const dirs = tree(path.join(root, `t${budget}`), budget);
      const skip = path.join(root, `t${budget}`, 'd3');
      const plan = await planWatches(path.join(root, `t${budget}`), (d) => d === skip, budget, 7);
      assert.ok(plan, 'no limit: always a plan');
      const covered = new Map<string, number>();
      const count = (d: string): void => {
        covered.set(d, (covered.get(d) ?? 0) + 1);
      };
      for (const d of plan.alone) count(d);
      const walk = (d: string): void => {
        if (d === skip) return;
        count(d);
        for (const e of fs.readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(path.join(d, e.name));
      };
      for (const g of plan.groups) for (const t of g) walk(t);
      for (const d of dirs) {
        if (d === skip || d.startsWith(skip + '/')) assert.equal(covered.get(d), undefined, `${d} skipped`);
        else assert.equal(covered.get(d), 1, `${d} watched once (budget ${budget})`);
      }
      const entries = (d: string): number =>
        fs
          .readdirSync(d, { withFileTypes: true })
          .reduce((n, e) => n + 1 + (e.isDirectory() && path.join(d, e.name) !== skip ? entries(path.join(d, e.name)) : 0), 0);
      for (const g of plan.groups) {
        const size = g.reduce((n, t) => n + entries(t), 0);
        assert.ok(g.length === 1 || size <= budget, `a group of ${g.length} subtrees holds ${size} > ${budget} entries`);
      }
      if (budget === 10_000) assert.deepEqual([plan.alone, plan.groups], [[], [[path.join(root, 't10000')]]], 'a small layer is one recursive watch');
    }
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('a watcher started in pieces sees changes in alone dirs, in subtrees, and in dirs made later', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ovlws-pieces-'));
  const lower = path.join(root, 'lower');
  const upper = path.join(root, 'upper');
  const work = path.join(root, 'work');
  for (const d of ['big/a/x', 'big/b/y', 'big/c']) fs.mkdirSync(path.join(lower, d), { recursive: true });
  for (let i = 0; i < 12; i++) fs.writeFileSync(path.join(lower, 'big', `f${i}`), 'lower');
  fs.writeFileSync(path.join(lower, 'big/a/x/deep.txt'), 'lower');
  fs.mkdirSync(path.join(upper, 'big'), { recursive: true });
  for (let i = 0; i < 12; i++) fs.writeFileSync(path.join(upper, 'big', `u${i}`), 'upper');
  fs.mkdirSync(work);
  const ov = await Overlay.open({ lower: [lower], upper, work });
  const events: { path: string; type: number }[] = [];
  const copyUps: string[] = [];
  // 4 entries a piece: the root and big/ are watched alone; "always": the lower is watched whole too.
  const w = new OverlayWatcher(ov, () => undefined, { batchMs: 10, scanEntries: 4, setting: 'always' });
  w.on('changes', (c) => events.push(...c));
  w.on('copyup', (c) => copyUps.push(c.path));
  const seen = async (p: string, what: string): Promise<void> => {
    const until = Date.now() + 5000;
    while (!events.some((e) => e.path === p) && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    assert.ok(
      events.some((e) => e.path === p),
      `${what}: an event for ${p} (got ${JSON.stringify(events.map((e) => e.path))})`,
    );
  };
  try {
    await w.start();
    fs.writeFileSync(path.join(upper, 'big/new.txt'), 'x'); // in a directory watched alone
    await seen('/big/new.txt', 'alone dir');
    fs.mkdirSync(path.join(upper, 'big/a/x'), { recursive: true }); // an outside copy-up deep in a subtree of the lower
    fs.writeFileSync(path.join(upper, 'big/a/x/deep.txt'), 'copied up');
    await seen('/big/a/x/deep.txt', 'copy-up into a new upper subtree');
    assert.ok(copyUps.includes('/big/a/x/deep.txt'), 'reported as a copy-up');
    await new Promise((r) => setTimeout(r, 400)); // the new directories are watched by now
    fs.writeFileSync(path.join(upper, 'big/a/x/later.txt'), 'later'); // a directory made after start, under one watched alone
    await seen('/big/a/x/later.txt', 'dir made after start');
    fs.writeFileSync(path.join(lower, 'big/b/y/low.txt'), 'lower change'); // a lower subtree
    ov.invalidateLowers();
    await seen('/big/b/y/low.txt', 'lower subtree');
  } finally {
    await w.close();
    await ov.close();
    fs.rmSync(root, { recursive: true, force: true });
  }
});
