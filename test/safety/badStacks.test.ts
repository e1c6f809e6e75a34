/** Bad stacks: each refused by Overlay.open with a Node code and a message naming the problem. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { Overlay, type StackSpec } from '../../server/src/overlay';
import { figure, tempDir } from './helpers';

const dir = tempDir('badstack');
const shm = fs.existsSync('/dev/shm') ? fs.mkdtempSync('/dev/shm/ovlws-safety-') : undefined;
after(() => { fs.rmSync(dir, { recursive: true, force: true }); if (shm) fs.rmSync(shm, { recursive: true, force: true }); });
for (const d of ['l0', 'l1', 'upper', 'work', 'upper/inner']) fs.mkdirSync(path.join(dir, d), { recursive: true });
fs.writeFileSync(path.join(dir, 'file'), 'x');
const P = (s: string): string => path.join(dir, s);

const cases: [string, StackSpec, string, RegExp][] = [
  ['missing lower', { lower: [P('nope')] }, 'ENOENT', /does not exist/],
  ['lower is a file', { lower: [P('file')] }, 'ENOTDIR', /not a directory/],
  ['no lower', { lower: [] }, 'EINVAL', /at least one lower/],
  ['upper without work', { lower: [P('l0')], upper: P('upper') }, 'EINVAL', /work directory/],
  ['missing work', { lower: [P('l0')], upper: P('upper'), work: P('nowork') }, 'ENOENT', /does not exist/],
  ['same lower twice', { lower: [P('l0'), P('l0')] }, 'EINVAL', /twice/],
  ['upper overlaps a lower', { lower: [P('upper/inner')], upper: P('upper'), work: P('work') }, 'EINVAL', /overlap/],
  ['work inside upper', { lower: [P('l0')], upper: P('upper'), work: P('upper/inner') }, 'EINVAL', /separate/],
  ['work not empty', { lower: [P('l0')], upper: P('upper'), work: P('l1') }, 'ENOTEMPTY', /not empty/],
];
if (shm) cases.push(['work on another filesystem', { lower: [P('l0')], upper: P('upper'), work: shm }, 'EXDEV', /same filesystem/]);

test('bad stacks are refused with an actionable message', async () => {
  fs.writeFileSync(path.join(dir, 'l1/stuff'), 'x');
  const seen: string[] = [];
  for (const [what, spec, code, msg] of cases) {
    await assert.rejects(Overlay.open(spec), (err: { code?: string; message: string }) => {
      assert.equal(err.code, code, `${what}: ${err.message}`);
      assert.match(err.message, msg, what);
      seen.push(`${what}: ${err.message}`);
      return true;
    }, what);
  }
  figure(`bad stacks: ${cases.length} refused\n#   ${seen.join('\n#   ')}`);
});
