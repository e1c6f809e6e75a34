/** The protocol's own definitions: every message says what it is, each check refuses what its type does not allow, the docs follow. */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'mocha';
import { notifications, requests } from '../../shared/src/catalog';
import { renderProtocolDoc } from '../../shared/src/protocolDoc';
import { AddOverlay, ListOverlays, ReadDirectories, Stat, WriteFile } from '../../shared/src/protocol';
import { checkParams, ParamError } from '../../shared/src/validate';

const ROOT = path.resolve(__dirname, '../../..');

describe('protocol', () => {
  it('lists every message once, each with a method under overlay/, a direction and a doc line', () => {
    const methods = [...requests, ...notifications].map((m) => m.method);
    assert.equal(new Set(methods).size, methods.length, 'a method declared twice');
    for (const m of [...requests, ...notifications]) {
      assert.match(m.method, /^overlay\/[a-zA-Z]+$/);
      assert.ok(m.doc.length > 10, `${m.method} has no doc line`);
    }
    assert.ok(requests.every((r) => r.messageDirection === 'clientToServer'));
    assert.ok(notifications.every((n) => n.messageDirection === 'serverToClient'));
    assert.deepEqual(
      requests
        .filter((r) => r.changesOverlay)
        .map((r) => r.method)
        .sort(),
      [
        'overlay/addOverlay',
        'overlay/close',
        'overlay/copy',
        'overlay/createDirectory',
        'overlay/delete',
        'overlay/open',
        'overlay/openImage',
        'overlay/removeOverlay',
        'overlay/rename',
        'overlay/revert',
        'overlay/write',
        'overlay/writeFile',
      ],
    );
  });

  it('checks params: the typed shape passes, anything else is EINVAL naming the field', () => {
    assert.deepEqual(checkParams(Stat.method, Stat.params, { name: 's', path: '/a', extra: 1 }), { name: 's', path: '/a' });
    const refused = (def: { method: string; params: (v: unknown, at: string) => unknown }, v: unknown, field: RegExp) =>
      assert.throws(
        () => checkParams(def.method, def.params, v),
        (e: unknown) => e instanceof ParamError && e.code === 'EINVAL' && field.test(e.message) && e.message.includes(def.method),
      );
    refused(Stat, { name: 's' }, /"path" must be a string/);
    refused(Stat, null, /params must be an object/);
    refused(Stat, ['s', '/'], /params must be an object/);
    refused(WriteFile, { name: 's', path: '/x', data: '!!!', create: true, overwrite: true }, /"data" must be base64/);
    refused(WriteFile, { name: 's', path: '/x', data: 'AA==', create: 'yes', overwrite: true }, /"create" must be a boolean/);
    refused(ReadDirectories, { name: 's', path: '/', budget: -1 }, /"budget" must be a non-negative integer/);
    refused(AddOverlay, { name: 'z', spec: { lower: '/etc' } }, /"spec".lower must be a list/);
    refused(AddOverlay, { name: 'z', spec: { lower: ['/a'], whiteouts: 'fat' } }, /whiteouts must be "kernel" or "oci" or "auto"/);
    refused(ListOverlays, { a: 1 }, /params must be absent/);
    assert.equal(checkParams(ListOverlays.method, ListOverlays.params, undefined), undefined);
    assert.deepEqual(checkParams(AddOverlay.method, AddOverlay.params, { name: 'z', spec: { lower: ['/a'], upper: '', work: null } }), {
      name: 'z',
      spec: { lower: ['/a'] },
    });
  });

  it('docs/protocol.md is what the definitions print (npm run docs:protocol)', () => {
    assert.equal(fs.readFileSync(path.join(ROOT, 'docs/protocol.md'), 'utf8'), renderProtocolDoc());
  });
});
