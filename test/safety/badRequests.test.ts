/**
 * Bad requests over the real server: thousands of generated hostile paths (.., %2e%2e,
 * NUL, backslashes, absolute host paths, URIs, overlong, lone surrogates) on every
 * path-taking request, and malformed params. Each is refused with an overlay error
 * naming a Node code and a message, or (for a harmless literal name) served inside the
 * stack; the server never dies; canaries outside stay untouched and never leak.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'mocha';
import assert from 'node:assert/strict';
import { requests } from '../../shared/src/catalog';
import { OVERLAY_ERROR, type StackSpec } from '../../shared/src/protocol';
import { Canaries, figure, isInside, prng, scale, seedFromEnv, tempDir, treeHash } from './helpers';
import { outcome, startServer, type Server } from './server';

let dir: string;
let canaries: Canaries;
let srv: Server;
let layers: string[];
let lowerHash: string[];
let spec: StackSpec;

/** The barrage may remove or replace overlay "s" (it sends every request): open it again so the rest still reaches it. */
async function keepOverlay(): Promise<void> {
  const list = await outcome(srv.conn, 'overlay/list', undefined);
  const names = list.ok ? (list.result as { name: string }[]).map((o) => o.name) : [];
  if (!names.includes('s')) assert.ok((await outcome(srv.conn, 'overlay/addOverlay', { name: 's', spec })).ok, 'reopening overlay "s"');
}

before(async () => {
  dir = tempDir('badreq');
  canaries = new Canaries(dir);
  const l0 = path.join(dir, 'stack/l0');
  const upper = path.join(dir, 'stack/upper');
  const work = path.join(dir, 'stack/work');
  for (const d of [l0, upper, work]) fs.mkdirSync(d, { recursive: true });
  fs.writeFileSync(path.join(l0, 'file.txt'), 'lower file\n');
  fs.mkdirSync(path.join(l0, 'sub'));
  fs.writeFileSync(path.join(l0, 'sub/inner.txt'), 'inner\n');
  fs.symlinkSync(canaries.files[0], path.join(l0, 'abs'));
  fs.symlinkSync('../../../../../../../../' + path.relative('/', canaries.files[0]), path.join(l0, 'rel'));
  fs.symlinkSync(canaries.dir, path.join(l0, 'absdir'));
  fs.symlinkSync('../../canary', path.join(l0, 'sub/updir'));
  fs.symlinkSync('loop', path.join(l0, 'loop'));
  layers = [l0, upper];
  lowerHash = [treeHash(l0)];
  spec = { lower: [l0], upper, work, whiteouts: 'kernel' };
  srv = await startServer({ s: spec });
});

after(async () => {
  await srv?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

const SEGMENTS = [
  '..',
  '%2e%2e',
  '%2E%2E%2F',
  '.',
  '',
  'a',
  'file.txt',
  'sub',
  'abs',
  'rel',
  'absdir',
  'loop',
  '..\\..',
  '\\',
  'C:\\Windows',
  '\0',
  'x\0y',
  '~',
  '\ud800',
  '\u202eevil',
  'é',
  'a'.repeat(256),
  'b'.repeat(255),
  'overlay:',
  'file:',
  '%00',
  '...',
  ' ',
  '\n',
  '*',
  '?',
];

function genPath(r: ReturnType<typeof prng>): string {
  const roll = r.next();
  if (roll < 0.05) return 'x'.repeat(4097 + r.int(5000));
  if (roll < 0.1)
    return r.pick([
      'overlay://s/../../etc/passwd',
      'file:///etc/passwd',
      'overlay://s/%2e%2e/%2e%2e/',
      '\\\\?\\C:\\x',
      '//etc/passwd',
      '/proc/self/root/etc/passwd',
    ]);
  if (roll < 0.15) return r.pick(canaries.files);
  const n = 1 + r.int(6);
  const parts = Array.from({ length: n }, () => r.pick(SEGMENTS));
  return (r.next() < 0.85 ? '/' : '') + parts.join(r.next() < 0.9 ? '/' : '\\');
}

/** What the engine must say about a path before touching anything. */
function mustRefuse(p: string): string | undefined {
  if (!p.startsWith('/')) return 'EINVAL';
  if (p.includes('\0')) return 'EINVAL';
  if (Buffer.byteLength(p) > 4096) return 'ENAMETOOLONG';
  if (p.split('/').includes('..')) return 'EINVAL';
  if (p.split('/').some((c) => Buffer.byteLength(c) > 255)) return 'ENAMETOOLONG';
  return undefined;
}

const realPathsIn = (v: unknown, out: string[] = []): string[] => {
  if (v && typeof v === 'object')
    for (const [k, x] of Object.entries(v)) {
      if (k === 'realPath' && typeof x === 'string') out.push(x);
      else realPathsIn(x, out);
    }
  return out;
};

test('thousands of generated hostile paths: refused or served inside the stack, server alive, canaries intact', async () => {
  const seed = seedFromEnv();
  const r = prng(seed);
  const n = scale(4000, 40000);
  const t0 = Date.now();
  const byCode: Record<string, number> = {};
  let served = 0;
  const b64 = Buffer.from('payload').toString('base64');
  const requests: [string, (p: string) => unknown][] = [
    ['overlay/stat', (p) => ({ name: 's', path: p })],
    ['overlay/readDirectory', (p) => ({ name: 's', path: p })],
    ['overlay/readFile', (p) => ({ name: 's', path: p, inline: true })],
    ['overlay/readFile', (p) => ({ name: 's', path: p })],
    ['overlay/resolve', (p) => ({ name: 's', path: p })],
    ['overlay/writeFile', (p) => ({ name: 's', path: p, data: b64, create: true, overwrite: true })],
    ['overlay/createDirectory', (p) => ({ name: 's', path: p })],
    ['overlay/delete', (p) => ({ name: 's', path: p, recursive: true })],
    ['overlay/rename', (p) => ({ name: 's', from: '/file.txt', to: p, overwrite: false })],
    ['overlay/rename', (p) => ({ name: 's', from: p, to: '/renamed', overwrite: false })],
    ['overlay/copy', (p) => ({ name: 's', from: p, to: '/copied', overwrite: true })],
    ['overlay/open', (p) => ({ name: 's', path: p })],
  ];
  for (let i = 0; i < n; i++) {
    const p = genPath(r);
    const [method, params] = requests[i % requests.length];
    const res = await outcome(srv.conn, method, params(p));
    const refuse = mustRefuse(p);
    if (res.ok) {
      assert.equal(refuse, undefined, `${method} ${JSON.stringify(p)} succeeded, expected ${refuse}`);
      assert.ok(!canaries.leaked(res.result), `${method} ${JSON.stringify(p)} answered canary bytes`);
      for (const rp of realPathsIn(res.result)) assert.ok(isInside(rp, layers), `${method} ${JSON.stringify(p)} realPath outside the layers: ${rp}`);
      served++;
      if (method === 'overlay/open') await outcome(srv.conn, 'overlay/close', { name: 's', handle: (res.result as { handle: number }).handle });
      continue;
    }
    assert.equal(res.rpc, OVERLAY_ERROR, `${method} ${JSON.stringify(p)}: not an overlay error (${res.rpc} ${res.message})`);
    assert.match(res.code ?? '', /^E[A-Z0-9]+$/, `${method} ${JSON.stringify(p)}: no Node code (${res.message})`);
    assert.ok(res.message.length > 0);
    // Rename/copy fail on the other operand sometimes; only check the refusal code for single-path requests.
    if (refuse && !method.match(/rename|copy/))
      assert.ok(res.code === 'EINVAL' || res.code === 'ENAMETOOLONG', `${method} ${JSON.stringify(p)}: ${res.code} (${res.message})`);
    byCode[res.code!] = (byCode[res.code!] ?? 0) + 1;
    assert.ok(!canaries.leaked(res.message), `error message carries canary bytes: ${res.message}`);
  }
  assert.ok(srv.alive(), 'server died');
  assert.deepEqual(canaries.changed(), []);
  assert.deepEqual([treeHash(layers[0])], lowerHash, 'lower layer changed');
  // Nothing was created outside the upper layer: the stack dir holds only its own parts.
  assert.deepEqual(fs.readdirSync(dir).sort(), ['canary', 'stack']);
  figure(`badRequests seed=${seed} paths=${n} in ${Date.now() - t0} ms served-inside=${served} refused=${JSON.stringify(byCode)}`);
}).timeout(300_000);

test('copy of the root into itself is refused at once (defect: it recursed until ENAMETOOLONG)', async () => {
  const t0 = Date.now();
  const res = await outcome(srv.conn, 'overlay/copy', { name: 's', from: '/', to: '/copied-root', overwrite: true });
  assert.ok(!res.ok && res.code === 'EINVAL', JSON.stringify(res));
  assert.ok(Date.now() - t0 < 2000);
  assert.ok(!fs.existsSync(path.join(layers[1], 'copied-root')));
});

test('malformed protocol params: every one refused with a clear error, server alive', async () => {
  // Every request of the protocol (shared/src/catalog.ts iterates protocol.ts): a new one is in the barrage at once.
  const methods = requests.map((r) => r.method);
  assert.ok(methods.length >= 25, `the catalog lists ${methods.length} requests`);
  const bad: unknown[] = [
    null,
    0,
    'str',
    [],
    [1, 2],
    {},
    { name: 's' },
    { name: 'nope', path: '/' },
    { name: 5, path: '/' },
    { name: 's', path: 5 },
    { name: 's', path: { toString: '/' } },
    { name: 's', path: ['/', 'file.txt'] },
    { name: '__proto__', path: '/' },
    { name: 'constructor', path: '/' },
    { name: 's', path: '/x', data: '!!!not base64!!!', create: 'yes', overwrite: 1 },
    { name: 's', path: '/x', data: 12 },
    { name: 's', handle: -1, position: 0, length: 10 },
    { name: 's', handle: 1e300, position: -5, length: 1e12, data: 'AA==' },
    { name: 's', handle: 'h', position: NaN },
    { name: 's', from: null, to: '/x' },
    { name: 's', path: '/', include: { $re: 1 }, maxResults: -1 },
    { name: 's', query: null },
    { name: 'z', spec: { lower: '/etc' } },
    { name: 'z', spec: { lower: ['/nonexistent-ovl'] } },
    { name: 'z', spec: null },
    { name: 's', path: '/'.repeat(100000) },
  ];
  const byCode: Record<string, number> = {};
  let count = 0;
  for (const m of methods) {
    for (const params of bad) {
      const t0 = Date.now();
      const res = await outcome(srv.conn, m, params);
      if (process.env.OVERLAY_SAFETY_DEBUG && Date.now() - t0 > 200)
        figure(`slow ${Date.now() - t0} ms: ${m} ${JSON.stringify(params).slice(0, 80)} -> ${JSON.stringify(res).slice(0, 200)}`);
      count++;
      if (m === 'overlay/removeOverlay' || m === 'overlay/addOverlay') await keepOverlay();
      if (res.ok) {
        byCode.ok = (byCode.ok ?? 0) + 1;
        continue;
      }
      assert.ok(res.message.length > 0, `${m} ${JSON.stringify(params)}: empty message`);
      const key = res.rpc === OVERLAY_ERROR ? (res.code ?? 'no-code') : `rpc${res.rpc}`;
      assert.notEqual(key, 'no-code', `${m} ${JSON.stringify(params)}: overlay error without a Node code`);
      byCode[key] = (byCode[key] ?? 0) + 1;
      assert.ok(srv.alive(), `server died on ${m} ${JSON.stringify(params)}`);
    }
  }
  assert.ok(srv.alive());
  const list = await outcome(srv.conn, 'overlay/list', undefined);
  assert.ok(list.ok, 'overlay/list fails after the barrage');
  assert.ok(!srv.logs.join('').includes('uncaught'), `uncaught exception logged: ${srv.logs.join('').slice(0, 500)}`);
  assert.deepEqual(canaries.changed(), []);
  figure(`malformed params: ${count} requests, outcomes ${JSON.stringify(byCode)}`);
}).timeout(120_000);
