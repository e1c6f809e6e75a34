/**
 * Whole-file writes that keep the inode (inPlaceWrite.ts): a file with other hard links is
 * written in place, every name reads the new data, nothing is left in the work dir; an
 * in-place write a dead writer left unfinished gets its old content back at the next open.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, it } from 'mocha';
import { makeStack, type TestStack } from './helpers';

/** The pid of a process that has exited (its work-dir names are a dead writer's). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

describe('whole-file writes of multiply-linked files', () => {
  let s: TestStack | undefined;
  afterEach(() => {
    s?.cleanup();
    s = undefined;
  });

  it('a write reaches every name of the inode and leaves nothing in the work dir', async () => {
    s = makeStack('kernel', [{ 'l.txt': 'lower' }], { 'a/x': 'old', b: null });
    fs.linkSync(`${s.upper}/a/x`, `${s.upper}/b/y`);
    const ino = fs.statSync(`${s.upper}/a/x`).ino;
    const ov = await s.open();
    try {
      await ov.writeFile('/b/y', 'new content');
      for (const p of ['/a/x', '/b/y']) assert.equal((await ov.readFile(p)).toString(), 'new content', p);
      assert.equal(fs.statSync(`${s.upper}/a/x`).ino, ino, 'same inode');
      assert.equal(fs.statSync(`${s.upper}/a/x`).nlink, 2);
      assert.deepEqual(fs.readdirSync(`${s.work}/work`), []);
    } finally {
      await ov.close();
    }
  });

  it("an open puts back the old content of a dead writer's unfinished in-place write", async () => {
    s = makeStack('kernel', [{ 'l.txt': 'lower' }], { x: 'torn ne', done: 'finished write', early: 'untouched' });
    fs.linkSync(`${s.upper}/x`, `${s.upper}/x2`);
    const work = `${s.work}/work`;
    fs.mkdirSync(work, { recursive: true });
    const pid = deadPid();
    // Killed mid-write: the old content and a second link to the file.
    fs.writeFileSync(`${work}/#ovlws-${pid}-1-aaaaaa.old`, 'the old content');
    fs.linkSync(`${s.upper}/x`, `${work}/#ovlws-${pid}-1-aaaaaa.dest`);
    // Killed after the write finished (.dest removed first): the leftover .old must not come back.
    fs.writeFileSync(`${work}/#ovlws-${pid}-2-bbbbbb.old`, 'older than the finished write');
    // Killed before the link (the file not touched yet): .old only, dropped.
    fs.writeFileSync(`${work}/#ovlws-${pid}-3-cccccc.old`, 'untouched');
    const ov = await s.open();
    try {
      assert.equal(fs.readFileSync(`${s.upper}/x`, 'utf8'), 'the old content');
      assert.equal(fs.readFileSync(`${s.upper}/x2`, 'utf8'), 'the old content');
      assert.equal(fs.statSync(`${s.upper}/x`).nlink, 2, 'the recovery link is gone, the two names remain');
      assert.equal(fs.readFileSync(`${s.upper}/done`, 'utf8'), 'finished write');
      assert.equal(fs.readFileSync(`${s.upper}/early`, 'utf8'), 'untouched');
      assert.deepEqual(fs.readdirSync(work), []);
    } finally {
      await ov.close();
    }
  });

  it('names of a live writer are left alone', async () => {
    s = makeStack('kernel', [{ 'l.txt': 'lower' }], { x: 'being written' });
    const work = `${s.work}/work`;
    fs.mkdirSync(work, { recursive: true });
    // The parent process (alive) mid-write: nothing may be put back under its feet.
    const live = `#ovlws-${process.ppid}-1-aaaaaa`;
    fs.writeFileSync(path.join(work, live + '.old'), 'old');
    fs.linkSync(`${s.upper}/x`, path.join(work, live + '.dest'));
    const ov = await s.open();
    try {
      assert.equal(fs.readFileSync(`${s.upper}/x`, 'utf8'), 'being written');
      assert.deepEqual(fs.readdirSync(work).sort(), [live + '.dest', live + '.old']);
    } finally {
      await ov.close();
    }
  });
});
