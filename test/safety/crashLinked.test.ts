/**
 * Crash safety of files with more than one link (issue 14). Such a file is written in place,
 * like the kernel writes it, so that every name keeps reading the same inode; the old content
 * is first kept in the work directory beside a second link to the file, and the next open of
 * the stack puts it back should the writer die mid-write. SIGKILL the engine (crashChild.ts)
 * at random moments while it rewrites hard-linked upper files, small and of several MiB, then
 * open the stack once (as the restarted server or the next CLI command does) and check:
 *  - both names of every file are still one inode with two links;
 *  - every file is complete: its last acknowledged write, or the one in flight, never torn;
 *  - nothing of the dead process is left in <work>/work.
 * CI: 40 kills; OVERLAY_SAFETY_LONG=1: 400.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, describe, it } from 'mocha';
import { Overlay } from '../../server/src/overlay';
import { contentFor, parseContent } from './crashContent';
import { figure, prng, scale, seedFromEnv, tempDir } from './helpers';

const CHILD = path.join(__dirname, 'crashChild.js');
const dirs: string[] = [];

/** An upper holding files that each have a second name under /links. */
function buildStack(): {
  spec: { lower: string[]; upper: string; work: string; whiteouts: 'kernel' };
  small: string[];
  large: string[];
  upper: string;
  work: string;
} {
  const dir = tempDir('crash-linked');
  dirs.push(dir);
  const [l0, upper, work] = ['l0', 'upper', 'work'].map((n) => path.join(dir, n));
  for (const d of [l0, upper, work, path.join(upper, 's'), path.join(upper, 'big'), path.join(upper, 'links')]) fs.mkdirSync(d, { recursive: true });
  const small = Array.from({ length: 24 }, (_, i) => `/s/f${i}.txt`);
  const large = ['/big/blob0.bin', '/big/blob1.bin'];
  for (const rel of [...small, ...large]) {
    fs.writeFileSync(upper + rel, contentFor(rel, 'init', large.includes(rel) ? 4 << 20 : 200));
    fs.linkSync(upper + rel, linkOf(upper, rel));
  }
  return { spec: { lower: [l0], upper, work, whiteouts: 'kernel' }, small, large, upper, work };
}

const linkOf = (upper: string, rel: string): string => path.join(upper, 'links', path.basename(rel));

after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

describe('crash safety of files with hard links', () => {
  it('SIGKILL of the engine while it rewrites hard-linked files: after the next open every file is whole, the links hold', async () => {
    const seed = seedFromEnv();
    figure(`crash-linked seed ${seed} (replay with OVERLAY_SAFETY_SEED=${seed})`);
    const rnd = prng(seed);
    const s = buildStack();
    const state = new Map<string, { acked: string; pending?: string }>();
    for (const rel of [...s.small, ...s.large]) state.set(rel, { acked: 'init' });
    const kills = scale(40, 400);
    const figures = { kills: 0, acks: 0, pendingLanded: 0, pendingLost: 0, recoveries: 0, filesChecked: 0 };

    for (let round = 0; round < kills; round++) {
      let readyAt = 0;
      let error = '';
      const child = spawn(process.execPath, [CHILD, JSON.stringify({ spec: s.spec, small: s.small, large: s.large, seed: seed + round, round, workers: 4 })], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let buf = '';
      child.stdout.setEncoding('utf8');
      child.stdout.on('data', (d: string) => {
        buf += d;
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const [kind, p, tag] = buf.slice(0, nl).split(' ');
          buf = buf.slice(nl + 1);
          if (kind === 'ready') readyAt = Date.now();
          else if (kind === 'error') error ||= `child: ${p} ${tag}`;
          else if (kind === 'start') state.get(p)!.pending = tag;
          else if (kind === 'ack') {
            state.get(p)!.acked = tag;
            state.get(p)!.pending = undefined;
            figures.acks++;
          }
        }
      });
      const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
      const delay = rnd.int(scale(250, 400));
      const timer = setInterval(() => {
        if (readyAt && Date.now() - readyAt >= delay) {
          clearInterval(timer);
          child.kill('SIGKILL');
        }
      }, 1);
      await exited;
      clearInterval(timer);
      assert.equal(error, '', error);
      assert.ok(readyAt > 0, `round ${round}: the child never became ready`);
      figures.kills++;

      // What the dead writer left in the work directory, then the open that recovers.
      const left = fs.readdirSync(path.join(s.work, 'work'));
      if (left.some((n) => n.endsWith('.dest'))) figures.recoveries++;
      const ov = await Overlay.open(s.spec);
      await ov.close();
      assert.deepEqual(
        fs.readdirSync(path.join(s.work, 'work')),
        [],
        `round ${round}: the open left names of the dead writer in the work dir (before: ${left.join(', ')})`,
      );

      for (const [rel, st] of state) {
        figures.filesChecked++;
        const a = fs.lstatSync(s.upper + rel);
        const b = fs.lstatSync(linkOf(s.upper, rel));
        assert.equal(a.ino, b.ino, `round ${round}: ${rel} and its second name are no longer one file`);
        assert.equal(a.nlink, 2, `round ${round}: ${rel} has ${a.nlink} links`);
        const tag = parseContent(rel, fs.readFileSync(s.upper + rel));
        assert.ok(tag !== undefined, `round ${round}: ${rel} is torn (${a.size} bytes); acknowledged ${st.acked}, in flight ${st.pending ?? 'none'}`);
        if (tag === st.acked) {
          if (st.pending) figures.pendingLost++;
        } else {
          assert.equal(tag, st.pending, `round ${round}: ${rel} holds write ${tag}; acknowledged ${st.acked}, in flight ${st.pending ?? 'none'}`);
          st.acked = tag;
          figures.pendingLanded++;
        }
        st.pending = undefined;
      }
    }
    figure(`crash-linked ${JSON.stringify(figures)}`);
    assert.ok(figures.acks > 0, 'the child never got a write done before the kills');
  }).timeout(600_000);
});
