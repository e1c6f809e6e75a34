/**
 * The processes that still read the old copy after a copy-up (server/src/holders/), on real
 * processes: one that holds the lower file open, one that has it mapped (and no fd), one that
 * opened and closed it (a python3 helper: holderProcess.ts). Through the real server (the
 * didCopyUp notification carries them), the CLI (`holders`, and the warnings of write, append
 * and truncate), as an unprivileged user, and in a real Docker container.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'mocha';
import * as P from '../../shared/src/protocol';
import { busyboxImage, childrenOf, dockerDaemon, runContainer, type Container, type Docker } from '../mocha/docker';
import { describeOrSkip, skipBecause } from '../mocha/skip';
import { b64, makeStack, startServer, until, watchReady, type Stack, type Started } from './harness';
import { holdFiles, noPython, type HeldBy } from './holderProcess';
import { HolderScanner } from '../../server/src/holders/scanner';

const BIN = path.resolve(__dirname, '../../../bin/overlayws.js');
const NOBODY = { uid: 65534, gid: 65534 };

function cli(args: string[], input?: string, asNobody = false): { code: number | null; out: string; err: string } {
  const argv = asNobody ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, BIN, ...args] : [process.execPath, BIN, ...args];
  const r = spawnSync(argv[0], argv.slice(1), { input, encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** `PID<TAB>how` of each line `holders` printed. */
const pidsAndHow = (out: string): string[] =>
  out
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split('\t').slice(0, 2).join(' '));

async function copyUp(s: Started, name: string, p: string, data: string): Promise<P.DidCopyUp.Params> {
  await s.conn.sendRequest(P.WriteFile.type, { name, path: p, data: b64(data), create: false, overwrite: true });
  await until(() => s.copyUps.some((c) => c.path === p), 10_000, `didCopyUp of ${p}`);
  return s.copyUps.find((c) => c.path === p) as P.DidCopyUp.Params;
}

const holderSummary = (c: P.DidCopyUp.Params): string[] => (c.holders ?? []).map((h) => `${h.pid} ${h.how}`).sort();

describeOrSkip('processes that still read the old copy', noPython, () => {
  let st: Stack;
  let s: Started | undefined;
  const held: HeldBy[] = [];
  const lower = (f: string) => path.join(st.lower[0], f);

  beforeEach(() => {
    st = makeStack([{ 'a.conf': 'a lower\n', 'b.conf': 'b lower\n', 'c.conf': 'c lower\n', 'd.conf': 'd lower\n', 'e.conf': 'e lower\n' }]);
  });
  afterEach(async () => {
    for (const h of held.splice(0)) await h.stop();
    await s?.stop();
    s = undefined;
    st.cleanup();
  });

  it('a copy-up by the server names who holds the lower file open and who has it mapped, not who closed it; none once they ended', async () => {
    const files = [lower('a.conf'), lower('b.conf')];
    const open = await holdFiles('open', files);
    const mapped = await holdFiles('mapped', files);
    const closed = await holdFiles('closed', files);
    held.push(open, mapped, closed);
    s = await startServer({ w: st.spec });
    await watchReady(s);
    const first = await copyUp(s, 'w', '/a.conf', 'a edited\n');
    assert.deepEqual(holderSummary(first), [`${open.pid} open`, `${mapped.pid} mapped`].sort());
    const byPid = new Map((first.holders ?? []).map((h) => [h.pid, h]));
    assert.equal(byPid.get(open.pid)?.name, 'python3');
    assert.match(byPid.get(open.pid)?.command ?? '', /hold\.py open .*a\.conf/);
    assert.equal(byPid.get(open.pid)?.uid, process.getuid?.());
    assert.ok((byPid.get(open.pid)?.startTime ?? 0) > 0, 'a start time names the process');
    assert.equal(byPid.get(open.pid)?.container, undefined, 'no container');
    assert.ok(!byPid.has(closed.pid), 'the process that closed the file holds nothing');
    assert.equal(typeof first.uninspectable, 'number');

    for (const h of held.splice(0)) await h.stop();
    const second = await copyUp(s, 'w', '/b.conf', 'b edited\n');
    assert.deepEqual(second.holders, [], 'they ended: nobody holds the old copy of b.conf');
  });

  it('overlayws holders lists them; write, append and truncate warn once per holder and keep their exit status; an outside copy-up is notified with them', async () => {
    const stack = ['--lower', st.lower.join(':'), '--upper', st.upper, '--work', st.work];
    const open = await holdFiles('open', [lower('c.conf'), lower('d.conf'), lower('e.conf')]);
    const mapped = await holdFiles('mapped', [lower('c.conf')]);
    const closed = await holdFiles('closed', [lower('c.conf')]);
    held.push(open, mapped, closed);

    const listed = cli([...stack, 'holders', '/c.conf']);
    assert.equal(listed.code, 0, listed.err);
    assert.deepEqual(pidsAndHow(listed.out).sort(), [`${open.pid} open`, `${mapped.pid} mapped`].sort());
    const line = listed.out.split('\n').find((l) => l.startsWith(`${open.pid}\t`)) as string;
    const fields = line.split('\t');
    assert.equal(fields.length, 4, 'PID, open|mapped, COMMAND, CONTAINER');
    assert.match(fields[2], /python3 .*hold\.py open/);
    assert.equal(fields[3], '', 'CONTAINER is empty when none is known');
    assert.equal(cli([...stack, 'holders', '/a.conf']).out, '', 'nothing when none');
    assert.equal(cli([...stack, 'holders', '/nope']).code, 1);

    // The server watches the stack: the CLI's copy-ups are outside ones, notified with their holders.
    s = await startServer({ w: st.spec });
    await watchReady(s);
    const w = cli([...stack, 'write', '/c.conf'], 'c written\n');
    assert.equal(w.code, 0, w.err);
    const warnings = w.err.split('\n').filter((l) => l.startsWith('overlayws: warning: '));
    assert.deepEqual(
      warnings.sort(),
      [
        `overlayws: warning: python3 (pid ${mapped.pid}) still reads the old copy of /c.conf (mapped)`,
        `overlayws: warning: python3 (pid ${open.pid}) still reads the old copy of /c.conf (open)`,
      ].sort(),
    );
    assert.equal(fs.readFileSync(path.join(st.upper, 'c.conf'), 'utf8'), 'c written\n');
    await until(() => s!.copyUps.some((c) => c.path === '/c.conf'), 10_000, 'didCopyUp of the CLI write');
    const outside = s.copyUps.find((c) => c.path === '/c.conf') as P.DidCopyUp.Params;
    assert.equal(outside.by, 'outside');
    assert.deepEqual(holderSummary(outside), [`${open.pid} open`, `${mapped.pid} mapped`].sort());

    const again = cli([...stack, 'write', '/c.conf'], 'c again\n');
    assert.equal(again.err, '', 'no copy-up, no warning');
    const appended = cli([...stack, 'append', '/d.conf'], 'more\n');
    assert.equal(appended.code, 0);
    assert.equal(appended.err, `overlayws: warning: python3 (pid ${open.pid}) still reads the old copy of /d.conf (open)\n`);
    const truncated = cli([...stack, 'truncate', '/e.conf', '2']);
    assert.equal(truncated.code, 0);
    assert.equal(truncated.err, `overlayws: warning: python3 (pid ${open.pid}) still reads the old copy of /e.conf (open)\n`);
    const failed = cli([...stack, 'truncate', '/e.conf/', '2']);
    assert.equal(failed.code, 1, 'a failing write keeps its status');
  });

  it('the scan runs in a worker thread, or on the calling thread where the worker cannot start: the same answer', async () => {
    const open = await holdFiles('open', [lower('a.conf')]);
    held.push(open);
    const file = { path: '/a.conf', lower: { realPath: lower('a.conf'), layerRoot: st.lower[0] } };
    const inWorker = new HolderScanner(path.resolve(__dirname, '../../server/src/holders/scanWorker.js'));
    let paused = 0;
    const inThread = new HolderScanner(path.join(st.root, 'no-such-worker.js'), async () => {
      paused++;
      await new Promise((resolve) => setImmediate(resolve));
    });
    try {
      for (const scanner of [inWorker, inThread]) {
        const report = await scanner.scan([file]);
        assert.deepEqual(
          report.holders[0].map((h) => `${h.pid} ${h.how}`),
          [`${open.pid} open`],
        );
      }
      assert.ok(paused > 0, 'the in-thread scan yields between slices');
    } finally {
      inWorker.stop();
    }
  });

  it('a write answers before its copy-up is notified; copy-ups are notified in the order they were made', async () => {
    const open = await holdFiles('open', [lower('c.conf'), lower('e.conf')]);
    held.push(open);
    s = await startServer({ w: st.spec });
    await watchReady(s);
    const order = ['/a.conf', '/b.conf', '/c.conf', '/d.conf', '/e.conf'];
    for (const p of order) {
      await s.conn.sendRequest(P.WriteFile.type, { name: 'w', path: p, data: b64('edited\n'), create: false, overwrite: true });
      assert.ok(!s.copyUps.some((c) => c.path === p), `the answer to the write of ${p} came before its notification`);
    }
    await until(() => s!.copyUps.length >= order.length, 10_000, 'every didCopyUp');
    assert.deepEqual(
      s.copyUps.map((c) => c.path),
      order,
    );
    assert.deepEqual(
      s.copyUps.map((c) => (c.holders ?? []).map((h) => h.pid)),
      [[], [], [open.pid], [], [open.pid]],
    );
  });

  it('with the scan turned off (overlay/configure) copy-ups come without holders', async () => {
    const open = await holdFiles('open', [lower('a.conf'), lower('b.conf')]);
    held.push(open);
    s = await startServer({ w: st.spec });
    await watchReady(s);
    await s.conn.sendRequest(P.Configure.type, { scanHolders: false });
    const off = await copyUp(s, 'w', '/a.conf', 'x');
    assert.equal(off.holders, undefined);
    assert.equal(off.uninspectable, undefined);
    await s.conn.sendRequest(P.Configure.type, { scanHolders: true });
    assert.deepEqual(holderSummary(await copyUp(s, 'w', '/b.conf', 'y')), [`${open.pid} open`]);
  });
});

describeOrSkip(
  'processes that still read the old copy, for a user that may not inspect other users’ processes',
  noPython ?? (process.getuid?.() === 0 ? undefined : 'needs root: the scan runs as nobody (uid 65534) beside processes of root'),
  () => {
    let st: Stack;
    const held: HeldBy[] = [];
    let s: Awaited<ReturnType<typeof startServer>> | undefined;

    before(() => {
      st = makeStack([{ 'f.conf': 'lower\n', 'g.conf': 'lower\n' }]);
      fs.chmodSync(st.root, 0o755);
      for (const d of [st.upper, st.work]) fs.chownSync(d, NOBODY.uid, NOBODY.gid);
      // root's files that anyone may write: a write by nobody is allowed, as on a kernel mount
      for (const f of ['f.conf', 'g.conf']) fs.chmodSync(path.join(st.lower[0], f), 0o666);
    });
    after(async () => {
      for (const h of held.splice(0)) await h.stop();
      await s?.stop();
      st.cleanup();
    });

    it('the CLI as nobody lists nobody’s holder, counts root’s processes as not inspectable, and succeeds', async () => {
      const files = [path.join(st.lower[0], 'f.conf'), path.join(st.lower[0], 'g.conf')];
      const rootHolder = await holdFiles('open', files);
      const nobodyHolder = await holdFiles('open', files, NOBODY);
      held.push(rootHolder, nobodyHolder);
      const stack = ['--lower', st.lower.join(':'), '--upper', st.upper, '--work', st.work];
      const r = cli([...stack, 'holders', '/f.conf'], undefined, true);
      assert.equal(r.code, 0, r.err);
      assert.deepEqual(pidsAndHow(r.out), [`${nobodyHolder.pid} open`]);
      const m = /note: (\d+) process(es)? could not be inspected/.exec(r.err);
      assert.ok(m && Number(m[1]) >= 1, `root's processes are counted as not inspectable: ${r.err}`);
      const w = cli([...stack, 'write', '/f.conf'], 'by nobody\n', true);
      assert.equal(w.code, 0, w.err);
      assert.equal(w.err, `overlayws: warning: python3 (pid ${nobodyHolder.pid}) still reads the old copy of /f.conf (open)\n`);
    });

    it('the server as nobody notifies nobody’s holder with a count of the processes it could not inspect', async () => {
      const nobodyHolder = held[1];
      s = await startServer({ n: st.spec }, '--stdio', NOBODY);
      await watchReady(s);
      const c = await copyUp(s, 'n', '/g.conf', 'g by nobody\n');
      assert.deepEqual(holderSummary(c), [`${nobodyHolder.pid} open`]);
      assert.equal(c.holders?.[0].uid, NOBODY.uid);
      assert.ok((c.uninspectable ?? 0) >= 1, `root's processes (this test runner at least) are counted: ${c.uninspectable}`);
    });
  },
);

describe('processes that still read the old copy, in a Docker container', function () {
  this.timeout(180_000);
  let docker: Docker | string;
  let removeImage: (() => void) | undefined;
  const tag = `overlayws-test-holders:${process.pid}`;
  let ctr: Container | undefined;
  let s: Started | undefined;
  let st: Stack | undefined;

  before(async function () {
    docker = await dockerDaemon();
    if (typeof docker === 'string') skipBecause(this, docker);
    removeImage = busyboxImage(tag, { 'app/greeting.txt': 'hello from the image\n' });
  });
  afterEach(async () => {
    await s?.stop();
    s = undefined;
    ctr?.remove();
    ctr = undefined;
    st?.cleanup();
    st = undefined;
  });
  after(async () => {
    removeImage?.();
    if (typeof docker !== 'string') await docker?.stop();
  });

  /** A container whose `sleep` (not its init) keeps /app/greeting.txt open; the sleep's host pid. */
  async function reader(name: string): Promise<{ ctr: Container; pid: number }> {
    const c = runContainer(name, tag, ['sh', '-c', 'sleep 100000 3</app/greeting.txt & wait']);
    ctr = c;
    const init = await waitValue(() => c.inspect().State.Pid || undefined, 'the container runs');
    const pid = await waitValue(() => childrenOf(init)[0], 'the sleep inside the container');
    return { ctr: c, pid };
  }

  it('a copy-up into an upper of ours, over the container’s layers, names the container’s process and the container', async () => {
    const { ctr: c, pid } = await reader(`overlayws-holders-${process.pid}-a`);
    const data = c.inspect().GraphDriver.Data;
    // The container's layers as the lowers of an overlay with a fresh upper: the copy-up happens
    // there, and the container's process goes on reading the lower copy.
    st = makeStack([]);
    const spec: P.StackSpec = { lower: [data.UpperDir, ...data.LowerDir.split(':')], upper: st.upper, work: st.work };
    s = await startServer({ ctr: spec });
    await watchReady(s, 30_000);
    const n = await copyUp(s, 'ctr', '/app/greeting.txt', 'edited in VS Code\n');
    const h = n.holders?.find((x) => x.pid === pid);
    assert.ok(h, `the container's sleep (pid ${pid}) is named: ${JSON.stringify(n.holders)}`);
    assert.equal(h.how, 'open');
    assert.equal(h.name, 'sleep');
    assert.equal(h.container, c.name);
    assert.equal(h.containerId, c.inspect().Id);
  });

  it('a copy-up the kernel makes in the container’s own overlay (its layers opened as they are) names the process that opened the merged file', async () => {
    const { ctr: c, pid } = await reader(`overlayws-holders-${process.pid}-b`);
    const data = c.inspect().GraphDriver.Data;
    s = await startServer({ live: { lower: data.LowerDir.split(':'), upper: data.UpperDir, work: data.WorkDir } });
    await watchReady(s, 30_000);
    const info = (await s.conn.sendRequest(P.ListOverlays.type))[0];
    assert.equal(info.liveMount?.merged, data.MergedDir, 'the server writes through the container’s mount');
    const n = await copyUp(s, 'live', '/app/greeting.txt', 'edited through the mount\n');
    const h = n.holders?.find((x) => x.pid === pid);
    assert.ok(h, `the container's sleep (pid ${pid}) is named: ${JSON.stringify(n.holders)}`);
    assert.equal(h.container, c.name);
  });
});

async function waitValue<T>(probe: () => T | undefined, what: string, timeoutMs = 20_000): Promise<T> {
  let value: T | undefined;
  await until(
    () => {
      value = probe();
      return value !== undefined;
    },
    timeoutMs,
    what,
  );
  return value as T;
}
