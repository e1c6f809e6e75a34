import assert from 'node:assert/strict';
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
