/** Mount point names: the overlay name and the stack's hash, read back by the extension (shared/src/mountPoints.ts). */
import assert from 'node:assert/strict';
import { describe, it } from 'mocha';
import { mountPointName, ourMountPoint, parseMountPointName } from '../../shared/src/mountPoints';
import { stackHash } from '../../server/src/mounting/runtimeDir';

describe('mount point names', () => {
  it('encode the overlay name and the stack hash, and read back', () => {
    for (const name of ['demo', 'my-app_2', 'a.b', 'with space', 'ünïcode', '%41', '..', 'x.0123456789ab']) {
      const base = mountPointName(name, '0123456789ab');
      assert.match(base, /^[A-Za-z0-9_%-]+\.[0-9a-f]{12}$/, name);
      assert.deepEqual(parseMountPointName(base), { name, hash: '0123456789ab' });
    }
    assert.equal(mountPointName('a b', 'ffffffffffff'), 'a%20b.ffffffffffff');
  });

  it('are ours only directly under the runtime directory, with a 12-digit hash', () => {
    assert.deepEqual(ourMountPoint('/run/user/1/overlayws', '/run/user/1/overlayws/demo.0123456789ab'), { name: 'demo', hash: '0123456789ab' });
    assert.deepEqual(ourMountPoint('/run/user/1/overlayws/', '/run/user/1/overlayws/demo.0123456789ab/'), { name: 'demo', hash: '0123456789ab' });
    assert.equal(ourMountPoint('/run/user/1/overlayws', '/run/user/1/overlayws/demo.0123456789ab/src'), undefined);
    assert.equal(ourMountPoint('/run/user/1/overlayws', '/home/u/demo.0123456789ab'), undefined);
    assert.equal(parseMountPointName('demo.0123'), undefined);
    assert.equal(parseMountPointName('de mo.0123456789ab'), undefined);
    assert.equal(parseMountPointName('%ZZ.0123456789ab'), undefined);
  });

  it('hash the layers in order and the format: another stack, another mount point', () => {
    const s = { lower: ['/a', '/b'], upper: '/u', work: '/w', whiteouts: 'kernel' as const, userxattr: false };
    assert.match(stackHash(s), /^[0-9a-f]{12}$/);
    assert.equal(stackHash(s), stackHash({ ...s }));
    assert.notEqual(stackHash(s), stackHash({ ...s, lower: ['/b', '/a'] }));
    assert.notEqual(stackHash(s), stackHash({ ...s, whiteouts: 'oci' }));
    assert.notEqual(stackHash(s), stackHash({ ...s, upper: undefined, work: undefined }));
  });
});
