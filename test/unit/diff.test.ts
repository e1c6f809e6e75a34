import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'mocha';
import { FORMATS, makeStack } from './helpers';

for (const format of FORMATS) {
  describe(`changes in docker diff form (${format})`, () => {
    test('A, C and D with parents marked C', async () => {
      const s = makeStack(format, [{ 'etc/conf': 'c', 'etc/old': 'o', 'var/log/x': 'x', keep: 'k' }]);
      try {
        const ov = await s.open();
        await ov.writeFile('/etc/conf', 'changed');
        await ov.unlink('/etc/old');
        await ov.writeFile('/var/log/new', 'n');
        await ov.mkdir('/opt/tool', { recursive: true });
        const lines = (await ov.diff()).map((c) => `${c.kind} ${c.path}`);
        assert.deepEqual(lines, ['C /etc', 'C /etc/conf', 'D /etc/old', 'A /opt', 'A /opt/tool', 'C /var', 'C /var/log', 'A /var/log/new']);
      } finally {
        s.cleanup();
      }
    });

    test('an empty upper has no changes', async () => {
      const s = makeStack(format, [{ a: 'a' }]);
      try {
        assert.deepEqual(await (await s.open()).diff(), []);
      } finally {
        s.cleanup();
      }
    });
  });
}

describe('changes in docker diff form: whiteouts the format reads', () => {
  test('kernel xattr whiteouts (a zero-size file with overlay.whiteout in an overlay.opaque="x" directory) are D, as lookup and export read them', async () => {
    const s = makeStack('kernel', [{ 'd/gone': 'g', 'd/kept': 'k' }], { 'd/new': 'n' });
    try {
      const wh = path.join(s.upper, 'd/gone');
      fs.writeFileSync(wh, '');
      execFileSync('setfattr', ['-n', 'trusted.overlay.whiteout', '-v', 'y', wh]);
      execFileSync('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'x', path.join(s.upper, 'd')]);
      const ov = await s.open();
      assert.deepEqual((await ov.readdir('/d')).map((e) => e.name).sort(), ['kept', 'new']);
      assert.deepEqual(
        (await ov.diff()).map((c) => `${c.kind} ${c.path}`),
        ['C /d', 'D /d/gone', 'A /d/new'],
      );
      await ov.close();
    } finally {
      s.cleanup();
    }
  });
});
