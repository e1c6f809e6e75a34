/**
 * Mounted overlays (overlay/mount): the server mounts a stack under its runtime directory —
 * the kernel where it may, fuse-overlayfs otherwise — and holds the mount for the process that
 * started it. Real servers over JSON-RPC, real mounts, real kills; each test has a runtime
 * directory of its own (XDG_RUNTIME_DIR).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'mocha';
import { skipBecause } from '../mocha/skip';
import * as P from '../../shared/src/protocol';
import { b64, errorCode, makeStack, startServer, until, type Stack, type Started } from './harness';
import { mountedType } from '../mocha/mounts';
import { readState } from '../../server/src/mounting/state';

function canMountKernel(): string | undefined {
  if (process.getuid?.() !== 0) return `not root (uid ${process.getuid?.()}): mount -t overlay needs CAP_SYS_ADMIN`;
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'ovl-probe-'));
  try {
    for (const x of ['l', 'u', 'w', 'm']) fs.mkdirSync(path.join(d, x));
    const r = spawnSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${d}/l,upperdir=${d}/u,workdir=${d}/w`, `${d}/m`], { encoding: 'utf8' });
    if (r.status !== 0) return `mount -t overlay failed: ${r.stderr.trim()}`;
    spawnSync('umount', [`${d}/m`]);
    return undefined;
  } finally {
    fs.rmSync(d, { recursive: true, force: true });
  }
}

function canFuse(): string | undefined {
  if (spawnSync('sh', ['-c', 'command -v fuse-overlayfs']).status !== 0) return 'fuse-overlayfs is not installed';
  try {
    fs.accessSync('/dev/fuse', fs.constants.R_OK | fs.constants.W_OK);
  } catch {
    return '/dev/fuse is not usable here';
  }
  return undefined;
}

const NO_KERNEL = canMountKernel();
const NO_FUSE = canFuse();

describe('mounted overlays (overlay/mount)', function () {
  this.timeout(60_000);
  let st: Stack;
  let runtime: string;
  const servers: Started[] = [];
  const others: ChildProcess[] = [];
  const env = () => ({ XDG_RUNTIME_DIR: runtime, OVERLAYWS_MOUNT_LINGER_MS: '1500' });

  beforeEach(() => {
    st = makeStack([{ 'low.txt': 'lower\n', 'dir/in.txt': 'in\n', 'gone.txt': 'gone\n' }]);
    runtime = fs.mkdtempSync(path.join(os.tmpdir(), 'ovl-run-'));
  });
  afterEach(async () => {
    for (const s of servers.splice(0)) {
      s.child.kill('SIGCONT'); // one a test stopped (SIGSTOP) and failed before it let it go on
      await s.stop();
    }
    for (const c of others.splice(0)) {
      c.kill('SIGKILL');
      try {
        // the process group of one spawned detached (a shell and its children)
        if (c.pid) process.kill(-c.pid, 'SIGKILL');
      } catch {
        /* not a group leader, or gone */
      }
    }
    const dir = path.join(runtime, 'overlayws');
    for (const l of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
      const at = l.split(' ')[4];
      if (at?.startsWith(dir + '/')) spawnSync('umount', ['-l', at]);
    }
    // A reaper of this runtime directory may still be at work (its lock, its state file): it is
    // stopped first, and the removal tried again for a moment.
    spawnSync('pkill', ['-KILL', '-f', `reaper.js ${dir}`]);
    fs.rmSync(runtime, { recursive: true, force: true, maxRetries: 20 });
    st.cleanup();
  });

  async function server(overlays: Record<string, P.StackSpec>, processId?: number): Promise<Started> {
    const s = await startServer(overlays, '--stdio', { env: env(), processId });
    servers.push(s);
    return s;
  }

  it('mounts a kernel-format stack with the kernel under the runtime directory; writes go through it; unmount removes it', async function () {
    if (NO_KERNEL) skipBecause(this, NO_KERNEL);
    const s = await server({ k: st.spec });
    const r = await s.conn.sendRequest(P.Mount.type, { name: 'k' });
    assert.ok(r.mount, `not mounted: ${r.failure}`);
    assert.equal(r.mount.by, 'kernel');
    assert.match(r.mount.reason, /root/);
    assert.equal(r.mount.adopted, false);
    assert.equal(path.dirname(r.mount.path), path.join(runtime, 'overlayws'));
    assert.match(path.basename(r.mount.path), /^k\.[0-9a-f]{12}$/);
    assert.equal(mountedType(r.mount.path), 'overlay');
    assert.equal(fs.readFileSync(path.join(r.mount.path, 'low.txt'), 'utf8'), 'lower\n');
    // The overlay's info carries the mount, and writes of the server go through it (the kernel copies up).
    const info = (await s.conn.sendRequest(P.ListOverlays.type))[0];
    assert.deepEqual(info.mount, r.mount);
    assert.equal(info.liveMount?.merged, r.mount.path);
    await s.conn.sendRequest(P.WriteFile.type, { name: 'k', path: '/low.txt', data: b64('through the mount\n'), create: false, overwrite: true });
    assert.equal(fs.readFileSync(path.join(r.mount.path, 'low.txt'), 'utf8'), 'through the mount\n');
    assert.equal(fs.readFileSync(path.join(st.upper, 'low.txt'), 'utf8'), 'through the mount\n');
    assert.equal(fs.readFileSync(path.join(st.lower[0], 'low.txt'), 'utf8'), 'lower\n');
    await s.conn.sendRequest(P.Unmount.type, { name: 'k' });
    assert.equal(mountedType(r.mount.path), undefined);
    assert.equal(fs.existsSync(r.mount.path), false, 'the mount point is removed');
    assert.equal((await s.conn.sendRequest(P.ListOverlays.type))[0].mount, undefined);
  });

  it('mounts an OCI-format stack with fuse-overlayfs, and says why', async function () {
    if (NO_FUSE) skipBecause(this, NO_FUSE);
    fs.writeFileSync(path.join(st.lower[0], '.wh.nothing'), '');
    const s = await server({ o: { ...st.spec, whiteouts: 'oci' } });
    const r = await s.conn.sendRequest(P.Mount.type, { name: 'o' });
    assert.ok(r.mount, `not mounted: ${r.failure}`);
    assert.equal(r.mount.by, 'fuse-overlayfs');
    assert.match(r.mount.reason, /OCI \.wh\. files/);
    assert.equal(mountedType(r.mount.path), 'fuse.fuse-overlayfs');
    // The fuse mount counts as live: writes go through it, never behind it.
    const info = (await s.conn.sendRequest(P.ListOverlays.type))[0];
    assert.equal(info.liveMount?.merged, r.mount.path);
    await s.conn.sendRequest(P.Delete.type, { name: 'o', path: '/gone.txt', recursive: false });
    assert.equal(fs.existsSync(path.join(r.mount.path, 'gone.txt')), false);
    const wh = fs.lstatSync(path.join(st.upper, 'gone.txt'));
    assert.ok(wh.isCharacterDevice() && wh.rdev === 0, 'fuse-overlayfs left its whiteout');
    // The CLI writes through the fuse mount too.
    const cli = spawnSync(
      process.execPath,
      [path.resolve(__dirname, '../../../bin/overlayws.js'), '--lower', st.lower[0], '--upper', st.upper, '--work', st.work, 'write', '/cli.txt'],
      { input: 'from the CLI\n', env: { ...process.env, ...env() }, encoding: 'utf8' },
    );
    assert.equal(cli.status, 0, cli.stderr);
    assert.equal(fs.readFileSync(path.join(r.mount.path, 'cli.txt'), 'utf8'), 'from the CLI\n');
    await s.conn.sendRequest(P.Unmount.type, { name: 'o' });
    assert.equal(mountedType(r.mount.path), undefined);
  });

  it('a second server on the same stack adopts the mount; the last holder unmounts', async function () {
    if (NO_KERNEL && NO_FUSE) skipBecause(this, `${NO_KERNEL}; ${NO_FUSE}`);
    const holderA = spawn('sleep', ['600']);
    const holderB = spawn('sleep', ['600']);
    others.push(holderA, holderB);
    const a = await server({ one: st.spec }, holderA.pid);
    const b = await server({ other: st.spec }, holderB.pid);
    const ra = await a.conn.sendRequest(P.Mount.type, { name: 'one' });
    const rb = await b.conn.sendRequest(P.Mount.type, { name: 'other' });
    assert.ok(ra.mount && rb.mount, `${ra.failure ?? ''} ${rb.failure ?? ''}`);
    assert.equal(rb.mount.path, ra.mount.path, 'the second window uses the same mount');
    assert.equal(rb.mount.adopted, true);
    const mounts = fs
      .readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .filter((l) => l.includes(path.join(runtime, 'overlayws')));
    assert.equal(mounts.length, 1, `one mount: ${mounts.join('\n')}`);
    await a.conn.sendRequest(P.Unmount.type, { name: 'one' });
    assert.ok(mountedType(ra.mount.path), 'still mounted: the other window holds it');
    await b.conn.sendRequest(P.Unmount.type, { name: 'other' });
    assert.equal(mountedType(ra.mount.path), undefined);
  });

  it('a clean shutdown leaves the mount for the next server to adopt; nobody adopting, the reaper unmounts it', async function () {
    if (NO_KERNEL && NO_FUSE) skipBecause(this, `${NO_KERNEL}; ${NO_FUSE}`);
    const a = await server({ k: st.spec });
    const r = await a.conn.sendRequest(P.Mount.type, { name: 'k' });
    assert.ok(r.mount, r.failure);
    await a.stop();
    assert.ok(mountedType(r.mount.path), 'kept for a restarted extension host');
    const b = await server({ k: st.spec });
    const again = await b.conn.sendRequest(P.Mount.type, { name: 'k' });
    assert.equal(again.mount?.path, r.mount.path);
    assert.equal(again.mount?.adopted, true, 'adopted, not mounted again');
    await b.stop();
    await until(() => mountedType(r.mount!.path) === undefined && !fs.existsSync(r.mount!.path), 15_000, 'the reaper to unmount what nobody adopted');
  });

  it("a window's restarted server adopts its mount, and the old server letting go afterwards does not take the new one's holding with it", async function () {
    if (NO_KERNEL && NO_FUSE) skipBecause(this, `${NO_KERNEL}; ${NO_FUSE}`);
    const host = spawn('sleep', ['600']);
    others.push(host);
    const a = await server({ k: st.spec }, host.pid);
    const r = await a.conn.sendRequest(P.Mount.type, { name: 'k' });
    assert.ok(r.mount, r.failure);
    // Restart Server: the window's new server adopts the mount before the old one has let go.
    const b = await server({ k: st.spec }, host.pid);
    const again = await b.conn.sendRequest(P.Mount.type, { name: 'k' });
    assert.equal(again.mount?.adopted, true, 'adopted, not mounted again');
    await a.stop();
    // Once nothing lingers and no reaper is at work (a wrong let-go lingers it, and its reaper
    // unmounts it 1.5 s later): still mounted, held by b for the window.
    const dir = path.join(runtime, 'overlayws');
    const reaping = (): boolean => spawnSync('pgrep', ['-f', `reaper.js ${dir}`]).status === 0;
    const lingering = (): boolean =>
      (JSON.parse(fs.readFileSync(path.join(dir, 'mounts.json'), 'utf8')) as { mounts: { lingerUntil?: number }[] }).mounts.some(
        (m) => m.lingerUntil !== undefined,
      );
    await until(() => !reaping() && !lingering(), 15_000, 'no mount lingering and no reaper at work');
    assert.ok(
      mountedType(r.mount.path),
      `the old server's let-go unmounted the mount its window holds through the new server; state: ${fs.readFileSync(path.join(dir, 'mounts.json'), 'utf8')}`,
    );
    // And the window's last server letting go unmounts it: no stale holding of the old server keeps it.
    await b.conn.sendRequest(P.Unmount.type, { name: 'k' });
    await until(() => mountedType(r.mount!.path) === undefined, 10_000, 'unmounted when the last holder let go');
  });

  it('after SIGKILL of the server and of the process that started it, the next start removes the stale mount', async function () {
    if (NO_KERNEL && NO_FUSE) skipBecause(this, `${NO_KERNEL}; ${NO_FUSE}`);
    const host = spawn('sleep', ['600']);
    others.push(host);
    const a = await server({ k: st.spec }, host.pid);
    const r = await a.conn.sendRequest(P.Mount.type, { name: 'k' });
    assert.ok(r.mount, r.failure);
    a.child.kill('SIGKILL');
    host.kill('SIGKILL');
    await a.exited;
    await new Promise<void>((res) => (host.exitCode !== null || host.signalCode !== null ? res() : host.once('exit', () => res())));
    assert.ok(mountedType(r.mount.path), 'a crash leaves the mount behind');
    const b = await server({});
    await until(() => mountedType(r.mount!.path) === undefined, 10_000, 'the stale mount removed at the next start');
    assert.ok(
      b.logs.some((l) => l.includes(r.mount!.path) && /unmounted/.test(l)),
      b.logs.join('\n'),
    );
  });

  it("a window gone before its server let go (a reload ended the extension host first): the server exits on its parent's death and the mount lingers; the next server adopts it", async function () {
    if (NO_KERNEL && NO_FUSE) skipBecause(this, `${NO_KERNEL}; ${NO_FUSE}`);
    const host = spawn('sleep', ['600']);
    others.push(host);
    // A linger long enough that the adoption below never races the reaper.
    const a = await startServer({ k: st.spec }, '--stdio', { env: { ...env(), OVERLAYWS_MOUNT_LINGER_MS: '60000' }, processId: host.pid });
    servers.push(a);
    const r = await a.conn.sendRequest(P.Mount.type, { name: 'k' });
    assert.ok(r.mount, r.failure);
    host.kill('SIGKILL');
    // No shutdown: the language server library sees its parent gone and exits.
    await a.exited;
    assert.ok(mountedType(r.mount.path), 'kept for the next server');
    const rec = readState(path.join(runtime, 'overlayws')).mounts.find((m) => m.path === r.mount!.path);
    assert.ok(rec?.lingerUntil !== undefined && rec.lingerUntil > Date.now(), `lingering: ${JSON.stringify(rec)}`);
    const b = await server({ k: st.spec });
    const again = await b.conn.sendRequest(P.Mount.type, { name: 'k' });
    assert.equal(again.mount?.path, r.mount.path);
    assert.equal(again.mount?.adopted, true, `adopted, not mounted again: ${b.logs.join('\n')}`);
    const now = readState(path.join(runtime, 'overlayws')).mounts.find((m) => m.path === r.mount!.path);
    assert.equal(now?.lingerUntil, undefined);
    assert.deepEqual(
      now?.holders.map((h) => h.server),
      [b.child.pid],
    );
  });

  it('the next server starting while the old one has yet to notice its window is gone: the mount is left for the old one, adopted, and still held after it exits', async function () {
    if (NO_KERNEL && NO_FUSE) skipBecause(this, `${NO_KERNEL}; ${NO_FUSE}`);
    const host = spawn('sleep', ['600']);
    others.push(host);
    const a = await server({ k: st.spec }, host.pid);
    const r = await a.conn.sendRequest(P.Mount.type, { name: 'k' });
    assert.ok(r.mount, r.failure);
    // The old server stopped before it can notice (its parent watch runs every 3 s): the window is
    // gone, the server not yet — what a reload looks like to the next server when it starts fast.
    a.child.kill('SIGSTOP');
    host.kill('SIGKILL');
    await new Promise<void>((res) => (host.exitCode !== null || host.signalCode !== null ? res() : host.once('exit', () => res())));
    const b = await server({ k: st.spec });
    assert.ok(
      b.logs.some((l) => l.includes(r.mount!.path) && /its window is gone, its server .* not yet/.test(l)),
      b.logs.join('\n'),
    );
    const again = await b.conn.sendRequest(P.Mount.type, { name: 'k' });
    assert.equal(again.mount?.path, r.mount.path);
    assert.equal(again.mount?.adopted, true, 'adopted, not mounted again');
    a.child.kill('SIGCONT');
    await a.exited;
    assert.ok(mountedType(r.mount.path), 'still mounted: the next server holds it');
    const rec = readState(path.join(runtime, 'overlayws')).mounts.find((m) => m.path === r.mount!.path);
    assert.equal(rec?.lingerUntil, undefined, 'held, not lingering');
    assert.deepEqual(
      rec?.holders.map((h) => h.server),
      [b.child.pid],
    );
    // The last holder still unmounts.
    await b.conn.sendRequest(P.Unmount.type, { name: 'k' });
    assert.equal(mountedType(r.mount.path), undefined);
  });

  it('a mount taken away under the server is reported; writes then go to the engine again', async function () {
    if (NO_KERNEL) skipBecause(this, NO_KERNEL);
    const s = await server({ k: st.spec });
    const r = await s.conn.sendRequest(P.Mount.type, { name: 'k' });
    assert.ok(r.mount, r.failure);
    assert.equal(spawnSync('umount', [r.mount.path]).status, 0);
    await until(() => s.mountChanges.length > 0, 10_000, 'overlay/didChangeMount');
    assert.equal(s.mountChanges[0].name, 'k');
    assert.equal(s.mountChanges[0].mount, undefined);
    assert.match(s.mountChanges[0].message, /unmounted outside VS Code/);
    await s.conn.sendRequest(P.WriteFile.type, { name: 'k', path: '/after.txt', data: b64('x'), create: true, overwrite: false });
    assert.equal(fs.readFileSync(path.join(st.upper, 'after.txt'), 'utf8'), 'x');
  });

  it('revert under its own mount: unmounted for the moment, the upper copy dropped, mounted again; detached lazily past language servers; refused while a shell is inside', async function () {
    if (NO_KERNEL) skipBecause(this, NO_KERNEL);
    const s = await server({ k: st.spec });
    const r = await s.conn.sendRequest(P.Mount.type, { name: 'k' });
    assert.ok(r.mount, r.failure);
    fs.writeFileSync(path.join(r.mount.path, 'low.txt'), 'changed\n');
    assert.ok(fs.existsSync(path.join(st.upper, 'low.txt')));
    await s.conn.sendRequest(P.Revert.type, { name: 'k', path: '/low.txt' });
    assert.equal(fs.existsSync(path.join(st.upper, 'low.txt')), false, 'the upper copy is gone');
    assert.equal(mountedType(r.mount.path), 'overlay', 'mounted again');
    assert.equal(fs.readFileSync(path.join(r.mount.path, 'low.txt'), 'utf8'), 'lower\n');
    // A process whose current directory is in the mount (a language server) keeps it busy: it is
    // detached lazily, and the path shows the new mount.
    fs.writeFileSync(path.join(r.mount.path, 'low.txt'), 'changed again\n');
    const ls = spawn('sleep', ['600'], { cwd: path.join(r.mount.path, 'dir') });
    others.push(ls);
    await until(() => fs.existsSync(`/proc/${ls.pid}/cwd`), 5000, 'the process to start');
    await s.conn.sendRequest(P.Revert.type, { name: 'k', path: '/low.txt' });
    assert.equal(fs.readFileSync(path.join(r.mount.path, 'low.txt'), 'utf8'), 'lower\n');
    assert.equal(mountedType(r.mount.path), 'overlay');
    // A shell there could write through the old mount: refused, naming it.
    fs.writeFileSync(path.join(r.mount.path, 'low.txt'), 'changed a third time\n');
    // A group of its own, so that afterEach ends its sleep too (killing sh alone leaves it, inside the mount).
    const sh = spawn('sh', ['-c', 'sleep 600'], { cwd: path.join(r.mount.path, 'dir'), detached: true });
    others.push(sh);
    await until(() => fs.existsSync(`/proc/${sh.pid}/cwd`), 5000, 'the shell to start');
    const err = await s.conn.sendRequest(P.Revert.type, { name: 'k', path: '/low.txt' }).catch((e: { message: string; data: P.OverlayErrorData }) => e);
    assert.equal((err as { data: P.OverlayErrorData }).data.code, 'EBUSY');
    assert.match((err as { message: string }).message, new RegExp(`sh .*\\(pid ${sh.pid}: current directory\\)`));
    assert.equal(fs.readFileSync(path.join(r.mount.path, 'low.txt'), 'utf8'), 'changed a third time\n', 'nothing changed');
    assert.equal(await errorCode(s.conn.sendRequest(P.Stat.type, { name: 'k', path: '/nope' })), 'ENOENT');
  });

  it('as an unprivileged user (uid 65534): fuse-overlayfs, under a runtime directory of that user; writes go through the mount', async function () {
    if (process.getuid?.() !== 0) skipBecause(this, 'needs root to start a server as uid 65534');
    if (NO_FUSE) skipBecause(this, NO_FUSE);
    const fuseMode = fs.statSync('/dev/fuse').mode & 0o777;
    if ((fuseMode & 0o006) !== 0o006) fs.chmodSync('/dev/fuse', 0o666);
    try {
      spawnSync('chown', ['-R', '65534:65534', st.root]);
      fs.chmodSync(runtime, 0o700);
      fs.chownSync(runtime, 65534, 65534);
      fs.chmodSync(st.root, 0o755);
      const s = await startServer({ u: st.spec }, '--stdio', { env: env(), uid: 65534, gid: 65534 });
      servers.push(s);
      const r = await s.conn.sendRequest(P.Mount.type, { name: 'u' });
      assert.ok(r.mount, `not mounted: ${r.failure}`);
      assert.equal(r.mount.by, 'fuse-overlayfs');
      assert.match(r.mount.reason, /uid 65534.*root/);
      assert.equal(path.dirname(r.mount.path), path.join(runtime, 'overlayws'));
      assert.equal(fs.statSync(path.join(runtime, 'overlayws')).uid, 65534);
      assert.equal(mountedType(r.mount.path), 'fuse.fuse-overlayfs');
      const info = (await s.conn.sendRequest(P.ListOverlays.type))[0];
      assert.equal(info.liveMount?.merged, r.mount.path, 'the fuse mount counts as live: writes go through it');
      await s.conn.sendRequest(P.WriteFile.type, { name: 'u', path: '/low.txt', data: b64('by nobody\n'), create: false, overwrite: true });
      await s.conn.sendRequest(P.Delete.type, { name: 'u', path: '/gone.txt', recursive: false });
      assert.equal(fs.readFileSync(path.join(st.upper, 'low.txt'), 'utf8'), 'by nobody\n');
      assert.equal(fs.statSync(path.join(st.upper, 'low.txt')).uid, 65534);
      assert.equal(fs.readFileSync(path.join(st.lower[0], 'low.txt'), 'utf8'), 'lower\n');
      const wh = fs.lstatSync(path.join(st.upper, 'gone.txt'));
      assert.ok(wh.isCharacterDevice() && wh.rdev === 0);
      await s.conn.sendRequest(P.Unmount.type, { name: 'u' });
      assert.equal(mountedType(r.mount.path), undefined);
    } finally {
      if ((fuseMode & 0o006) !== 0o006) fs.chmodSync('/dev/fuse', fuseMode);
    }
  });
});
