/**
 * Crash safety: SIGKILL the LSP server (and, separately, a bare engine process) at random moments while it copies
 * up large and small files and writes whole files. After every kill:
 *  - every upper file is complete: the lower copy or exactly one generated write, never empty or torn;
 *  - every acknowledged write (and copy-up) is there;
 *  - nothing but the expected names is in upper (no temp files leaked into it);
 * at every restart the dead process's temp names in <work>/work are gone; at the end the
 * lower layers hash identical to before. CI: 100+ kills; OVERLAY_SAFETY_LONG=1: 1000.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, test } from 'mocha';
import assert from 'node:assert/strict';
import { Overlay, type StackSpec } from '../../server/src/overlay';
import { contentFor, parseContent } from './crashContent';
import { startServer, type Server } from './server';
import { figure, hashFile, prng, scale, seedFromEnv, tempDir, treeHash } from './helpers';

interface PathState {
  acked: string | 'lower';
  pending?: string;
  copiedUp: boolean;
}

const CHILD = path.join(__dirname, 'crashChild.js');
const dirs: string[] = [];
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function buildStack(): { dir: string; lower: string[]; upper: string; work: string; small: string[]; large: string[] } {
  const dir = tempDir('crash');
  dirs.push(dir);
  const l0 = path.join(dir, 'l0');
  const l1 = path.join(dir, 'l1');
  const upper = path.join(dir, 'upper');
  const work = path.join(dir, 'work');
  for (const d of [l0, l1, upper, work]) fs.mkdirSync(d);
  const small: string[] = [];
  for (let i = 0; i < 240; i++) {
    const rel = `/d${i % 12}/sub${i % 3}/f${i}.txt`;
    const layer = i % 2 ? l0 : l1;
    fs.mkdirSync(path.dirname(layer + rel), { recursive: true });
    fs.writeFileSync(layer + rel, `lower ${rel}\n`.repeat(1 + (i % 50)));
    small.push(rel);
  }
  const large: string[] = [];
  const mb = scale(16, 48);
  for (let i = 0; i < 2; i++) {
    const rel = `/big/blob${i}.bin`;
    fs.mkdirSync(path.dirname(l1 + rel), { recursive: true });
    const chunk = Buffer.alloc(1 << 20);
    const fd = fs.openSync(l1 + rel, 'w');
    for (let k = 0; k < mb; k++) {
      chunk.fill(`blob${i}-${k}-`);
      fs.writeSync(fd, chunk);
    }
    fs.closeSync(fd);
    large.push(rel);
  }
  return { dir, lower: [l0, l1], upper, work, small, large };
}

function lowerPathOf(lower: string[], rel: string): string {
  for (const l of lower) if (fs.existsSync(l + rel)) return l + rel;
  throw new Error(`no lower for ${rel}`);
}

function listFiles(root: string): string[] {
  return fs
    .readdirSync(root, { recursive: true })
    .map(String)
    .filter((r) => !fs.lstatSync(path.join(root, r)).isDirectory())
    .map((r) => '/' + r)
    .sort();
}

interface Job {
  spec: StackSpec;
  small: string[];
  large: string[];
  seed: number;
  round: number;
  workers: number;
}
interface Launched {
  pid(): number | undefined;
  kill(): void;
  exited: Promise<void>;
}

/** The engine in a child process of its own (crashChild.ts), reporting on stdout. */
function launchEngineChild(job: Job, onLine: (line: string) => void): Launched {
  const child = spawn(process.execPath, [CHILD, JSON.stringify(job)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let buf = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (d: string) => {
    buf += d;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      onLine(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
    }
  });
  return { pid: () => child.pid, kill: () => child.kill('SIGKILL'), exited: new Promise<void>((resolve) => child.on('close', () => resolve())) };
}

/**
 * The real LSP server, driven over JSON-RPC from here with the same job as crashChild:
 * a write is acknowledged when the server's response arrives.
 */
function launchServer(job: Job, onLine: (line: string) => void): Launched {
  let server: Server | undefined;
  let killed = false;
  const exited = (async () => {
    server = await startServer({ s: job.spec });
    if (killed) {
      server.child.kill('SIGKILL');
      await server.exited;
      server.conn.dispose();
      for (const stream of [server.child.stdin, server.child.stdout, server.child.stderr]) stream?.destroy();
      return;
    }
    onLine(`ready ${server.child.pid}`);
    const srv = server;
    const gone = srv.exited.then(() => {
      throw new Error('server gone');
    });
    gone.catch(() => undefined);
    const call = <R>(method: string, params: object): Promise<R> => Promise.race([srv.conn.sendRequest<R>(method, params), gone]);
    const rnd = prng(job.seed);
    const all = [...job.large, ...job.small];
    let seq = 0;
    const copyUp = async (p: string): Promise<void> => {
      const { handle } = await call<{ handle: number }>('overlay/open', { name: 's', path: p, write: true });
      await call('overlay/close', { name: 's', handle });
    };
    const worker = async (w: number): Promise<void> => {
      const mine = all.filter((_, i) => i % job.workers === w);
      for (const p of mine.filter((x) => job.large.includes(x))) {
        onLine(`cstart ${p}`);
        await copyUp(p);
        onLine(`cack ${p}`);
      }
      for (;;) {
        const p = mine[rnd.int(mine.length)];
        if (rnd.next() < 0.25) {
          onLine(`cstart ${p}`);
          await copyUp(p);
          onLine(`cack ${p}`);
        } else {
          const tag = `${job.round}.${w}.${seq++}`;
          const size = job.large.includes(p) && rnd.next() < 0.3 ? (1 << 20) + rnd.int(1 << 21) : 1 + rnd.int(32768);
          onLine(`start ${p} ${tag} ${size}`);
          await call('overlay/writeFile', { name: 's', path: p, data: contentFor(p, tag, size).toString('base64'), create: true, overwrite: true });
          onLine(`ack ${p} ${tag}`);
        }
      }
    };
    await Promise.all(Array.from({ length: job.workers }, (_, w) => worker(w).catch(() => undefined)));
    await srv.exited;
    srv.conn.dispose();
    // A killed child's pipes can stay referenced (a write pending on stdin): let them go.
    for (const stream of [srv.child.stdin, srv.child.stdout, srv.child.stderr]) stream?.destroy();
  })();
  return {
    pid: () => server?.child.pid,
    kill: () => {
      killed = true;
      server?.child.kill('SIGKILL');
    },
    exited,
  };
}

for (const target of ['server', 'engine'] as const) {
  test(`SIGKILL of the ${target === 'server' ? 'LSP server' : 'engine in a child process'} at random moments during copy-up and writes loses nothing acknowledged and tears nothing`, async () => {
    const seed = seedFromEnv();
    figure(`crash (${target}) seed ${seed} (replay with OVERLAY_SAFETY_SEED=${seed})`);
    const rnd = prng(seed);
    const s = buildStack();
    const lowerBefore = s.lower.map((l) => treeHash(l));
    const lowerHash = new Map<string, string>();
    for (const rel of [...s.small, ...s.large]) lowerHash.set(rel, hashFile(lowerPathOf(s.lower, rel)));
    const state = new Map<string, PathState>();
    for (const rel of [...s.small, ...s.large]) state.set(rel, { acked: 'lower', copiedUp: false });
    const spec = { lower: s.lower, upper: s.upper, work: s.work, whiteouts: 'kernel' as const };
    const kills = Number(process.env.OVERLAY_SAFETY_KILLS ?? 0) || scale(110, 1000);
    const figures = { kills: 0, acks: 0, copyAcks: 0, filesChecked: 0, pendingLanded: 0, pendingLost: 0, leftovers: 0, leftoversCleaned: 0, midLargeCopy: 0 };
    let stale: string[] = [];

    for (let round = 0; round < kills; round++) {
      let readyAt = 0;
      let error = '';
      const inflightLarge = new Set<string>();
      const onLine = (line: string): void => {
        const [kind, p, tag] = line.split(' ');
        if (kind === 'ready') {
          readyAt = Date.now();
          // Open cleaned the dead process's temp names before it said ready.
          const left = fs.readdirSync(path.join(s.work, 'work'));
          for (const name of stale) if (left.includes(name)) error ||= `stale temp ${name} survived a restart`;
          figures.leftoversCleaned += stale.length;
          return;
        }
        if (kind === 'error') {
          error ||= line;
          return;
        }
        const st = state.get(p);
        if (!st) {
          error ||= `unknown path in ${line}`;
          return;
        }
        if (kind === 'start') st.pending = tag + ' ';
        else if (kind === 'ack') {
          st.acked = tag;
          st.pending = undefined;
          st.copiedUp = true;
          figures.acks++;
        } else if (kind === 'cstart') {
          if (s.large.includes(p)) inflightLarge.add(p);
        } else if (kind === 'cack') {
          st.copiedUp = true;
          inflightLarge.delete(p);
          figures.copyAcks++;
        }
      };
      const job: Job = { spec, small: s.small, large: s.large, seed: seed + round, round, workers: 4 };
      const child = (target === 'server' ? launchServer : launchEngineChild)(job, onLine);
      const delay = rnd.int(scale(250, 400));
      const timer = setInterval(() => {
        if (readyAt && Date.now() - readyAt >= delay) {
          clearInterval(timer);
          child.kill();
        }
      }, 1);
      await child.exited;
      clearInterval(timer);
      assert.equal(error, '', error);
      assert.ok(readyAt > 0, `round ${round}: child never became ready`);
      figures.kills++;
      if (inflightLarge.size > 0) figures.midLargeCopy++;

      // Verify the upper layer.
      const expected = new Set([...state.keys()]);
      for (const rel of listFiles(s.upper)) {
        assert.ok(expected.has(rel), `round ${round}: unexpected entry in upper: ${rel}`);
      }
      for (const [rel, st] of state) {
        const up = s.upper + rel;
        let data: Buffer | undefined;
        try {
          data = fs.readFileSync(up);
        } catch (err) {
          if ((err as { code?: string }).code !== 'ENOENT') throw err;
        }
        figures.filesChecked++;
        if (!data) {
          assert.ok(st.acked === 'lower' && !st.copiedUp, `round ${round}: ${rel} acknowledged (${st.acked}) but missing from upper`);
          if (st.pending) figures.pendingLost++;
          st.pending = undefined;
          continue;
        }
        assert.ok(data.length > 0, `round ${round}: empty upper file ${rel}`);
        const tag = parseContent(rel, data);
        if (tag === undefined) {
          const isLower = data.length < 64 << 20 && hashFile(up) === lowerHash.get(rel);
          assert.ok(
            isLower,
            `round ${round}: ${rel} in upper is neither the lower copy nor one complete write (${data.length} bytes, starts ${JSON.stringify(data.subarray(0, 40).toString())})`,
          );
          assert.equal(st.acked, 'lower', `round ${round}: acknowledged write ${st.acked} to ${rel} lost (upper has the lower copy)`);
          if (st.pending) figures.pendingLost++;
        } else if (tag === st.acked) {
          if (st.pending) figures.pendingLost++;
        } else {
          assert.equal(tag + ' ', st.pending, `round ${round}: ${rel} holds write ${tag}, acknowledged ${st.acked}, pending ${st.pending ?? 'none'}`);
          st.acked = tag;
          figures.pendingLanded++;
        }
        st.pending = undefined;
        st.copiedUp = true;
      }
      // Leftovers of the dead child in <work>/work must be cleaned at the next start.
      const left = fs.readdirSync(path.join(s.work, 'work'));
      assert.ok(
        left.every((n) => n.startsWith(`#ovlws-${child.pid()}-`)),
        `round ${round}: foreign names in work dir: ${left.join(', ')}`,
      );
      figures.leftovers += left.length;
      stale = left;
      // Offline "revert" so the next round copies up again: drop both large copies and a fifth of the small ones.
      for (const [rel, st] of state) {
        if (s.large.includes(rel) || rnd.next() < 0.2) {
          fs.rmSync(s.upper + rel, { force: true });
          st.acked = 'lower';
          st.pending = undefined;
          st.copiedUp = false;
        }
      }
    }
    // One last start cleans the final leftovers.
    const ov = await Overlay.open(spec);
    const left = fs.readdirSync(path.join(s.work, 'work'));
    assert.deepEqual(
      left.filter((n) => stale.includes(n)),
      [],
      'leftovers of the last kill survived open',
    );
    figures.leftoversCleaned += stale.length;
    await ov.close();
    assert.deepEqual(
      s.lower.map((l) => treeHash(l)),
      lowerBefore,
      'a lower layer changed',
    );
    figure(`crash (${target}) ${JSON.stringify(figures)} lowerHashes=${lowerBefore.map((h) => h.slice(0, 12)).join(',')} unchanged`);
    assert.ok(figures.kills >= kills);
    assert.ok(figures.acks > 0 && figures.copyAcks > 0, 'the child never got anything done before the kills');
  }).timeout(600_000);
}
