/**
 * Unreadable directories, for a user that permission checks apply to: nobody (uid 65534;
 * root passes every check, and only root can make another user's directories). A lower layer holds a directory with mode 000 that
 * merges with a readable one below it, a directory whose lower part has mode 000, one
 * that can be searched but not listed and one the other way round, and a file with mode
 * 000. The engine (a child process as that user) and the real server (spawned as that
 * user) answer EACCES for what cannot be read, never an empty or partial listing, keep
 * serving everything else and never crash. Canaries outside the stack, readable by that
 * user, are never read or changed. Unreadable layer roots and unwritable upper or work
 * directories are refused by Overlay.open: badStacks.test.ts.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'mocha';
import assert from 'node:assert/strict';
import type { StackSpec } from '../../server/src/overlay';
import { skipBecause } from '../mocha/skip';
import { Canaries, canBecomeNobody, chownToNobody, engineAsNobody, figure, NOBODY, tempDir, treeHash } from './helpers';
import { outcome, startServer } from './server';
import type { Op, Outcome } from './unprivilegedChild';

let dir: string;
let canaries: Canaries;
const S = (p: string): string => path.join(dir, 'stack', p);
/** Directories and files made unreadable, with the mode they get. */
const LOCKS: [string, number][] = [
  ['l0/locked', 0],
  ['l1/mixed', 0],
  ['l0/noread', 0o311],
  ['l0/nosearch', 0o444],
  ['l0/secret.txt', 0],
];
let lowerHash: string[];

function put(p: string, content: string, mode?: number): void {
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, content);
  if (mode !== undefined) fs.chmodSync(p, mode);
}

function writableStack(tag: string): StackSpec {
  for (const d of [`upper${tag}`, `work${tag}`]) {
    fs.mkdirSync(S(d));
    chownToNobody(S(d));
  }
  return { lower: [S('l0'), S('l1')], upper: S(`upper${tag}`), work: S(`work${tag}`), whiteouts: 'kernel' };
}

const skip = canBecomeNobody ? undefined : 'needs root: the tests run the engine and the server as nobody';

before(() => {
  if (skip) return;
  dir = tempDir('unreadable');
  fs.chmodSync(dir, 0o755);
  canaries = new Canaries(dir);
  put(S('l0/locked/inside.txt'), 'inside\n');
  put(S('l0/locked/sub/deep.txt'), 'deep\n');
  put(S('l1/locked/l1only.txt'), 'from l1, below a locked directory\n');
  put(S('l0/mixed/a.txt'), 'a\n', 0o666);
  put(S('l1/mixed/b.txt'), 'b\n');
  put(S('l0/noread/known.txt'), 'known\n');
  put(S('l0/nosearch/f.txt'), 'f\n');
  put(S('l0/secret.txt'), 'secret\n');
  put(S('l0/open/ok.txt'), 'ok\n', 0o666);
  fs.chmodSync(S('l0/open'), 0o777); // anyone may create and remove names in /open
  put(S('l1/open/low.txt'), 'low\n', 0o644);
  put(S('l1/plain/x.txt'), 'x\n');
  fs.symlinkSync(canaries.files[0], S('l0/open/esc'));
  fs.symlinkSync('../../../canary/passwd', S('l0/open/rel'));
  for (const [p, mode] of LOCKS) fs.chmodSync(S(p), mode);
  lowerHash = [treeHash(S('l0')), treeHash(S('l1'))];
});

after(() => {
  if (skip) return;
  for (const [p] of LOCKS) {
    try {
      fs.chmodSync(S(p), 0o755);
    } catch {
      /* gone */
    }
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

/** The outcome each operation must have: a value, or an error code. */
const READS = (): [Op, { value: unknown } | { code: string }][] => [
  [['readdir', '/'], { value: ['locked', 'mixed', 'noread', 'nosearch', 'open', 'plain', 'secret.txt'] }],
  [['lstat', '/locked'], { value: { type: 'd', mode: 0, layer: 0, realPath: S('l0/locked') } }],
  [['readdir', '/locked'], { code: 'EACCES' }], // not l1's readable part alone
  [['stat', '/locked/inside.txt'], { code: 'EACCES' }],
  [['readFile', '/locked/inside.txt'], { code: 'EACCES' }],
  [['readFile', '/locked/sub/deep.txt'], { code: 'EACCES' }],
  [['stat', '/locked/l1only.txt'], { code: 'EACCES' }], // not served from l1, not ENOENT
  [['readdir', '/mixed'], { code: 'EACCES' }], // not l0's part alone
  [['readFile', '/mixed/a.txt'], { value: 'a\n' }],
  [['stat', '/mixed/b.txt'], { code: 'EACCES' }],
  [['readdir', '/noread'], { code: 'EACCES' }],
  [['readFile', '/noread/known.txt'], { value: 'known\n' }],
  [['readdir', '/nosearch'], { value: ['f.txt'] }],
  [['stat', '/nosearch/f.txt'], { code: 'EACCES' }],
  [['lstat', '/secret.txt'], { value: { type: 'f', mode: 0, layer: 0, realPath: S('l0/secret.txt') } }],
  [['readFile', '/secret.txt'], { code: 'EACCES' }],
  [['stat', '/open/low.txt'], { value: { type: 'f', mode: 0o644, layer: 1, realPath: S('l1/open/low.txt') } }],
  [['readdir', '/open'], { value: ['esc', 'low.txt', 'ok.txt', 'rel'] }],
  [['readFile', '/open/ok.txt'], { value: 'ok\n' }],
  [['readFile', '/open/low.txt'], { value: 'low\n' }],
  [['readFile', '/open/esc'], { code: 'ENOENT' }], // resolves inside the overlay: no /canary there
  [['readFile', '/open/rel'], { code: 'ENOENT' }],
];
const WRITES: [Op, { value: unknown } | { code: string }][] = [
  [['writeFile', '/open/new.txt', 'new\n'], { value: null }],
  [['writeFile', '/open/ok.txt', 'changed\n'], { value: null }],
  [['writeFile', '/mixed/a.txt', 'changed\n'], { value: null }],
  [['writeFile', '/locked/new.txt', 'x'], { code: 'EACCES' }],
  [['writeFile', '/locked/inside.txt', 'x'], { code: 'EACCES' }],
  [['mkdir', '/locked/d'], { code: 'EACCES' }],
  [['unlink', '/locked/inside.txt'], { code: 'EACCES' }],
  [['rmdir', '/locked/sub'], { code: 'EACCES' }],
  [['writeFile', '/mixed/b.txt', 'x'], { code: 'EACCES' }],
  [['unlink', '/mixed/b.txt'], { code: 'EACCES' }],
  [['writeFile', '/open/esc', 'x'], { code: 'ENOENT' }],
  // The merged file's mode and owner decide, as on a kernel mount (copying it up is no way around them).
  [['writeFile', '/secret.txt', 'x'], { code: 'EACCES' }], // mode 000
  [['writeFile', '/noread/known.txt', 'x'], { code: 'EACCES' }], // root's, 0644
  [['writeFile', '/open/low.txt', 'x'], { code: 'EACCES' }], // root's, 0644, in a lower layer below
  [['writeFile', '/plain/new.txt', 'x'], { code: 'EACCES' }], // a directory of root's, 0755 (the merged root is upper's: the user's)
  [['mkdir', '/nosearch/d'], { code: 'EACCES' }], // 0444: no write, no search
  [['unlink', '/plain/x.txt'], { code: 'EACCES' }], // removing needs write on the directory (root's, 0755)
  [['unlink', '/open/low.txt'], { value: null }], // /open is 0777
];
function expectOutcome(what: string, got: Outcome, want: { value: unknown } | { code: string }): void {
  assert.ok(!canaries.leaked(got), `${what} leaked canary bytes`);
  if ('code' in want) {
    assert.equal(got.ok ? 'ok' : got.code, want.code, `${what}: ${JSON.stringify(got)}`);
    if (!got.ok) assert.match(got.message, new RegExp(`^${want.code}: `), what);
  } else {
    assert.ok(got.ok, `${what}: ${JSON.stringify(got)}`);
    assert.deepEqual(got.value, want.value, what);
  }
}

function assertNothingOutside(uppers: string[]): void {
  assert.deepEqual(canaries.changed(), [], 'a canary outside the stack changed');
  assert.deepEqual([treeHash(S('l0')), treeHash(S('l1'))], lowerHash, 'a lower layer changed');
  assert.deepEqual(fs.readdirSync(path.join(dir, 'stack')).sort(), ['l0', 'l1', ...uppers].sort(), 'something was created beside the layers');
}

test('engine as an unprivileged user: EACCES for what it cannot read, everything else served, nothing outside touched', function () {
  if (skip) skipBecause(this, skip);
  const spec = writableStack('');
  const ops = [...READS(), ...WRITES];
  const report = engineAsNobody({ opens: [spec], ops: ops.map(([op]) => op) });
  assert.equal(report.uid, NOBODY.uid);
  assert.ok(report.opens[0].ok, JSON.stringify(report.opens[0]));
  ops.forEach(([op, want], i) => expectOutcome(`${op[0]} ${op[1]}`, report.ops[i], want));
  assertNothingOutside(['upper', 'work']);
  // Every file written is in upper (the copies of /open and /mixed), nothing the user may not write.
  const written = fs
    .readdirSync(S('upper'), { recursive: true })
    .map(String)
    .filter((n) => fs.lstatSync(path.join(S('upper'), n)).isFile())
    .sort();
  for (const f of ['mixed/a.txt', 'open/new.txt', 'open/ok.txt']) assert.ok(written.includes(f), `${f} not in upper: ${written.join(', ')}`);
  assert.ok(
    written.every((f) => !f.startsWith('locked')),
    `written under the locked directory: ${written.join(', ')}`,
  );
  for (const f of ['secret.txt', 'noread/known.txt', 'open/low.txt', 'plain/new.txt'])
    assert.ok(!written.includes(f), `${f} written though its mode forbids it`);
  const refused = report.ops.filter((o) => !o.ok).map((o) => (o as { message: string }).message);
  figure(
    `unreadable dirs, engine as uid ${report.uid}: ${ops.length} operations as expected (${refused.filter((m) => m.startsWith('EACCES')).length} EACCES), e.g. "${refused[0]}"; upper holds ${written.join(', ')}`,
  );
}).timeout(60_000);

test('server as an unprivileged user: EACCES over the wire, stays up, refuses unreadable stacks with a message', async function () {
  if (skip) skipBecause(this, skip);
  const spec = writableStack('2');
  const srv = await startServer({ s: spec }, NOBODY);
  try {
    const req = (method: string, params: object) => outcome(srv.conn, method, { name: 's', ...params });
    const wire: Record<string, [string, Awaited<ReturnType<typeof req>>]> = {};
    for (const [op] of [...READS(), ...WRITES]) {
      const p = op[1];
      const res =
        op[0] === 'readdir'
          ? await req('overlay/readDirectory', { path: p })
          : op[0] === 'stat' || op[0] === 'lstat'
            ? await req('overlay/stat', { path: p })
            : op[0] === 'readFile'
              ? await req('overlay/readFile', { path: p, inline: true })
              : op[0] === 'writeFile'
                ? await req('overlay/writeFile', { path: p, data: Buffer.from(op[2]).toString('base64'), create: true, overwrite: true })
                : op[0] === 'mkdir'
                  ? await req('overlay/createDirectory', { path: p })
                  : await req('overlay/delete', { path: p, recursive: false });
      wire[`${op[0]} ${p}`] = [op[0], res];
    }
    for (const [op, want] of [...READS(), ...WRITES]) {
      const [kind, res] = wire[`${op[0]} ${op[1]}`];
      const what = `${kind} ${op[1]} over the wire`;
      assert.ok(!canaries.leaked(res), `${what} leaked canary bytes`);
      if ('code' in want) {
        assert.ok(!res.ok, `${what}: ${JSON.stringify(res)}`);
        assert.equal(res.code, want.code, `${what}: ${JSON.stringify(res)}`);
      } else {
        assert.ok(res.ok, `${what}: ${JSON.stringify(res)}`);
        if (kind === 'readFile') assert.equal(Buffer.from((res.result as { data: string }).data, 'base64').toString(), want.value, what);
        if (kind === 'readdir') assert.deepEqual((res.result as [string, number][]).map(([n]) => n).sort(), want.value, what);
        if (kind === 'stat' || kind === 'lstat')
          assert.equal((res.result as { realPath: string }).realPath, (want.value as { realPath: string }).realPath, what);
      }
    }
    // Stacks this user cannot use: refused with a message naming the directory and what to do.
    fs.mkdirSync(S('closed'), { mode: 0 });
    const closed = await outcome(srv.conn, 'overlay/addOverlay', { name: 'closed', spec: { lower: [S('closed')] } });
    assert.ok(!closed.ok && closed.code === 'EACCES', JSON.stringify(closed));
    assert.match(closed.message, /lower layer 0 .*closed\) is not readable by this user .*chmod a\+rx/);
    const rootsUpper = await outcome(srv.conn, 'overlay/addOverlay', { name: 'ro', spec: { lower: [S('l1')], upper: S('l0'), work: S('work2') } });
    assert.ok(!rootsUpper.ok && rootsUpper.code === 'EACCES', JSON.stringify(rootsUpper));
    assert.match(rootsUpper.message, /upper directory is not writable by this user/);
    assert.ok(srv.alive(), 'the server died');
    const listed = await outcome(srv.conn, 'overlay/readDirectory', { name: 's', path: '/open' });
    assert.ok(listed.ok, 'the server stopped serving after the refusals');
    const watcherErrors = srv.logs.filter((l) => /EACCES|permission/i.test(l));
    fs.rmdirSync(S('closed'));
    assertNothingOutside(['upper', 'work', 'upper2', 'work2']);
    figure(
      `unreadable dirs, server as uid ${NOBODY.uid}: ${Object.keys(wire).length} requests as expected; refused stacks: "${closed.message}" / "${rootsUpper.message}"; ${watcherErrors.length} permission lines in the server log${watcherErrors.length ? `, e.g. ${JSON.stringify(watcherErrors[0].trim().slice(0, 200))}` : ''}`,
    );
    for (const l of srv.logs) assert.ok(!/uncaught|unhandled rejection/.test(l), `server log: ${l}`);
  } finally {
    await srv.stop();
  }
}).timeout(60_000);
