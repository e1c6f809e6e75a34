/**
 * Bad stacks: each refused by Overlay.open with a Node code and a message naming the
 * problem and what to do. Permission cases run the engine as an unprivileged user (root
 * passes every check); the live-mount case needs `mount -t overlay`.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, test } from 'mocha';
import assert from 'node:assert/strict';
import { Overlay, type StackSpec } from '../../server/src/overlay';
import { skipBecause } from '../mocha/skip';
import { getXattr } from '../../server/src/overlay/xattr';
import { canBecomeNobody, chownToNobody, engineAsNobody, figure, NOBODY, tempDir } from './helpers';
import { outcome, startServer } from './server';

const dir = tempDir('badstack');
const shm = fs.existsSync('/dev/shm') ? fs.mkdtempSync('/dev/shm/ovlws-safety-') : undefined;
after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
  if (shm) fs.rmSync(shm, { recursive: true, force: true });
});
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
    await assert.rejects(
      Overlay.open(spec),
      (err: { code?: string; message: string }) => {
        assert.equal(err.code, code, `${what}: ${err.message}`);
        assert.match(err.message, msg, what);
        seen.push(`${what}: ${err.message}`);
        return true;
      },
      what,
    );
  }
  figure(`bad stacks: ${cases.length} refused\n#   ${seen.join('\n#   ')}`);
});

test('unreadable or unwritable directories are refused for an unprivileged user, naming the directory and the fix', function () {
  if (!canBecomeNobody) skipBecause(this, 'needs root: the engine runs as nobody');
  const d = path.join(dir, 'perm');
  for (const x of ['l', 'closed', 'hidden/l', 'u', 'w', 'rootu', 'rootw', 'u000', 'w000']) fs.mkdirSync(path.join(d, x), { recursive: true });
  for (const x of ['u', 'w', 'u000', 'w000']) chownToNobody(path.join(d, x));
  fs.chmodSync(dir, 0o755);
  fs.chmodSync(d, 0o755);
  for (const [x, mode] of [
    ['closed', 0],
    ['hidden', 0o700],
    ['u000', 0],
    ['w000', 0],
  ] as const)
    fs.chmodSync(path.join(d, x), mode);
  const D = (x: string): string => path.join(d, x);
  const uid = `uid ${NOBODY.uid}`;
  const perm: [string, StackSpec, string, RegExp][] = [
    [
      'unreadable lower root',
      { lower: [D('closed')] },
      'EACCES',
      new RegExp(
        `lower layer 0 \\(${D('closed')}\\) is not readable by this user \\(${uid}; the directory has mode 0000 and owner uid 0\\): give it read and search permission \\(chmod a\\+rx\\)`,
      ),
    ],
    [
      'lower below an unsearchable dir',
      { lower: [D('l'), D('hidden/l')] },
      'EACCES',
      new RegExp(`lower layer 1 \\(${D('hidden/l')}\\) cannot be reached by this user \\(${uid}\\): a directory above it is not searchable`),
    ],
    ['unreadable upper', { lower: [D('l')], upper: D('u000'), work: D('w') }, 'EACCES', /upper directory \(.*u000\) is not readable by this user/],
    [
      'upper of another user',
      { lower: [D('l')], upper: D('rootu'), work: D('w') },
      'EACCES',
      /upper directory is not writable by this user \(.*owner uid 0\): give it write permission/,
    ],
    ['unreadable work', { lower: [D('l')], upper: D('u'), work: D('w000') }, 'EACCES', /work directory \(.*w000\) is not readable by this user/],
    ['work of another user', { lower: [D('l')], upper: D('u'), work: D('rootw') }, 'EACCES', /work directory is not writable by this user/],
  ];
  try {
    const report = engineAsNobody({ opens: perm.map(([, spec]) => spec), ops: [] });
    assert.equal(report.uid, NOBODY.uid);
    const seen: string[] = [];
    perm.forEach(([what, , code, msg], i) => {
      const o = report.opens[i];
      assert.ok(!o.ok, `${what}: opened`);
      assert.equal(o.code, code, `${what}: ${o.message}`);
      assert.match(o.message, msg, what);
      seen.push(`${what}: ${o.message}`);
    });
    figure(`bad stacks for uid ${report.uid}: ${perm.length} refused\n#   ${seen.join('\n#   ')}`);
  } finally {
    for (const x of ['closed', 'hidden', 'u000', 'w000']) fs.chmodSync(path.join(d, x), 0o755);
  }
}).timeout(60_000);

test('an upper that belongs to a live kernel mount: the engine refuses it without its merged directory; the server and the CLI write through the mount', async function () {
  const d = path.join(dir, 'live');
  for (const x of ['l', 'u', 'w', 'm']) fs.mkdirSync(path.join(d, x), { recursive: true });
  fs.writeFileSync(path.join(d, 'l/low.txt'), 'lower\n');
  fs.writeFileSync(path.join(d, 'l/keep.txt'), 'keep\n');
  const D = (x: string): string => path.join(d, x);
  const m = spawnSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${D('l')},upperdir=${D('u')},workdir=${D('w')}`, D('m')], { encoding: 'utf8' });
  if (m.status !== 0) skipBecause(this, `mount -t overlay is not permitted here: ${(m.stderr || m.error?.message || '').trim()}`);
  try {
    const spec = { lower: [D('l')], upper: D('u'), work: D('w') };
    const refused: string[] = [];
    for (const [what, s, msg] of [
      [
        'without merged',
        spec,
        new RegExp(
          `belongs to the overlay mounted at ${D('m')}; changing it behind the mount's back is undefined\\. Write through ${D('m')} instead .*"merged": "${D('m')}".*or unmount it first`,
        ),
      ],
      ['with another merged', { ...spec, merged: d }, new RegExp(`mounted at ${D('m')}, not at ${d} \\(the "merged" given\\)`)],
    ] as const) {
      await assert.rejects(Overlay.open(s), (err: { code?: string; message: string }) => {
        assert.equal(err.code, 'EBUSY', `${what}: ${err.message}`);
        assert.match(err.message, msg, what);
        refused.push(`${what}: ${err.message}`);
        return true;
      });
    }
    await (await Overlay.open({ ...spec, merged: D('m') })).close();
    // The CLI, given the stack with or without merged: reads the layers, writes through the mount
    // (the kernel places the new file in upper; the engine's work directory stays unused).
    const CLI = path.resolve(__dirname, '../../../bin/overlayws.js');
    const cli = (args: string[], input?: string) =>
      spawnSync(process.execPath, [CLI, '--lower', D('l'), '--upper', D('u'), '--work', D('w'), ...args], { encoding: 'utf8', input });
    assert.equal(cli(['cat', '/low.txt']).stdout, 'lower\n');
    fs.writeFileSync(D('spec.json'), JSON.stringify({ ...spec, merged: D('m') }));
    const withMerged = (args: string[], input?: string) => spawnSync(process.execPath, [CLI, '--spec', D('spec.json'), ...args], { encoding: 'utf8', input });
    assert.equal(withMerged(['cat', '/low.txt']).stdout, 'lower\n');
    const write = cli(['write', '/low.txt'], 'by the cli\n');
    assert.equal(write.status, 0, write.stderr);
    assert.equal(fs.readFileSync(D('m/low.txt'), 'utf8'), 'by the cli\n', 'the kernel mount shows the CLI write');
    assert.equal(fs.readFileSync(D('u/low.txt'), 'utf8'), 'by the cli\n');
    const mk = withMerged(['mkdir', '-p', '/made/by/cli']);
    assert.equal(mk.status, 0, mk.stderr);
    assert.ok(fs.statSync(D('m/made/by/cli')).isDirectory());
    const rm = cli(['rm', '-r', '/made']);
    assert.equal(rm.status, 0, rm.stderr);
    assert.ok(!fs.existsSync(D('m/made')));
    // Every other write command through the mount too.
    for (const [args, input] of [
      [['append', '/low.txt'], 'more\n'],
      [['truncate', '/low.txt', '15'], ''],
      [['chmod', '600', '/low.txt'], ''],
      [['ln', '-s', 'low.txt', '/link'], ''],
      [['mkdir', '/gone'], ''],
      [['rmdir', '/gone'], ''],
      [['mv', '/link', '/link2'], ''],
    ] as [string[], string][]) {
      const r = cli(args, input);
      assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
    }
    assert.equal(fs.readFileSync(D('m/low.txt'), 'utf8'), 'by the cli\nmore');
    assert.equal(fs.statSync(D('m/low.txt')).mode & 0o777, 0o600);
    assert.equal(fs.readlinkSync(D('m/link2')), 'low.txt');
    assert.ok(!fs.existsSync(D('m/gone')) && !fs.existsSync(D('m/link')));
    assert.equal(fs.readFileSync(D('l/low.txt'), 'utf8'), 'lower\n', 'the lower layer changed');
    // The server, given the stack without merged, finds the mount and writes through it:
    // a whole-file write (a new file renamed over the name) and a write through a handle,
    // whose copy-up is the kernel's own (it records trusted.overlay.origin; the engine does not).
    const srv = await startServer({ s: spec });
    try {
      const w = await outcome(srv.conn, 'overlay/writeFile', {
        name: 's',
        path: '/low.txt',
        data: Buffer.from('by the server\n').toString('base64'),
        create: false,
        overwrite: true,
      });
      assert.ok(w.ok, JSON.stringify(w));
      const h = await outcome(srv.conn, 'overlay/open', { name: 's', path: '/keep.txt', write: true });
      assert.ok(h.ok, JSON.stringify(h));
      const handle = (h.result as { handle: number }).handle;
      assert.ok((await outcome(srv.conn, 'overlay/write', { name: 's', handle, position: 0, data: Buffer.from('K').toString('base64') })).ok);
      assert.ok((await outcome(srv.conn, 'overlay/close', { name: 's', handle })).ok);
      const info = await outcome(srv.conn, 'overlay/list', {});
      assert.ok(info.ok);
      assert.deepEqual((info.result as { liveMount?: unknown }[])[0].liveMount, { merged: D('m'), reachable: true });
    } finally {
      await srv.stop();
    }
    assert.equal(fs.readFileSync(D('m/low.txt'), 'utf8'), 'by the server\n');
    assert.equal(fs.readFileSync(D('l/low.txt'), 'utf8'), 'lower\n');
    assert.equal(fs.readFileSync(D('m/keep.txt'), 'utf8'), 'Keep\n');
    assert.equal(fs.readFileSync(D('l/keep.txt'), 'utf8'), 'keep\n');
    assert.ok(getXattr(D('u/keep.txt'), 'trusted.overlay.origin') !== undefined, 'the upper copy of keep.txt was not made by the kernel');
    assert.deepEqual(
      fs.readdirSync(D('w/work')).filter((n) => n.startsWith('#ovlws')),
      [],
      "engine temp names in the mount's work directory",
    );
    figure(
      `bad stacks: live mount refused\n#   ${refused.join('\n#   ')}\n#   cli without merged: reads the layers, wrote through ${D('m')}\n#   server without merged: wrote through ${D('m')} (a handle write's copy-up is the kernel's: trusted.overlay.origin set)`,
    );
  } finally {
    spawnSync('umount', [D('m')]);
  }
}).timeout(60_000);
