/**
 * Images with real Docker, skopeo and umoci: an image built by `docker build` with four layers
 * (a whiteout, an opaque directory, a file changed in three layers and deleted in a fourth)
 * opened from the daemon, from a `docker save` archive and from an OCI layout (`skopeo copy`)
 * gives one merged tree, the one `docker run IMAGE` shows; edited and committed, the new image
 * loads and runs with the edits, `umoci unpack` of its layout equals the merged tree, and its
 * history has the commit's entry; a running container's changes equal `docker diff` and commit
 * without stopping it. Skips, saying why, when Docker, skopeo or umoci cannot be used.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'mocha';
import { skipBecause } from '../mocha/skip';
import { docker, dockerBuild, dockerUnavailable } from '../mocha/docker';

const BIN = path.resolve(__dirname, '../../../bin/overlayws.js');
const TAG = `overlayws-test-image-${process.pid}`;
const APPLETS = ['sh', 'cat', 'ls', 'echo', 'sleep', 'rm', 'mkdir', 'find', 'sort', 'sha256sum', 'xargs'];

function cli(env: NodeJS.ProcessEnv, ...args: string[]): string {
  const r = spawnSync(process.execPath, [BIN, ...args], { env, encoding: 'utf8', maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`overlayws ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

/** `overlayws tree /` as a walk of a real directory prints it (umoci's rootfs). */
function treeOf(root: string): string {
  const lines: [string, string][] = [];
  const walk = (dir: string, rel: string): void => {
    for (const name of fs.readdirSync(dir)) {
      const p = `${rel}/${name}`;
      const real = path.join(dir, name);
      const st = fs.lstatSync(real);
      let obj: Record<string, unknown>;
      if (st.isFile())
        obj = { path: p, type: 'f', mode: st.mode & 0o7777, size: st.size, sha256: createHash('sha256').update(fs.readFileSync(real)).digest('hex') };
      else if (st.isDirectory()) obj = { path: p, type: 'd', mode: st.mode & 0o7777 };
      else if (st.isSymbolicLink()) obj = { path: p, type: 'l', target: fs.readlinkSync(real) };
      else obj = { path: p, type: '?', mode: st.mode & 0o7777 };
      lines.push([p, JSON.stringify(obj)]);
      if (st.isDirectory()) walk(real, p);
    }
  };
  walk(root, '');
  return lines
    .sort((a, b) => Buffer.compare(Buffer.from(a[0]), Buffer.from(b[0])))
    .map((l) => l[1] + '\n')
    .join('');
}

/** What `docker run` shows of /app: every path with its type, and each file's sha256. */
function shownByDocker(image: string): string {
  return docker(['run', '--rm', '--network', 'none', image, 'sh', '-c', 'find /app | sort; find /app -type f | sort | xargs sha256sum']);
}

/** The same from an overlayws stack. */
function shownByOverlay(env: NodeJS.ProcessEnv, stack: string[]): string {
  const entries = cli(env, ...stack, 'tree', '/app')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { path: string; type: string; sha256?: string });
  const paths = ['/app', ...entries.map((e) => e.path)].sort();
  const files = entries.filter((e) => e.type === 'f').sort((a, b) => (a.path < b.path ? -1 : 1));
  return [...paths.map((p) => p + '\n'), ...files.map((f) => `${f.sha256}  ${f.path}\n`)].join('');
}

describe('images with real Docker: open, history, commit', function () {
  let tmp: string;
  let env: NodeJS.ProcessEnv;
  const images: string[] = [];
  const containers: string[] = [];

  before(async function () {
    this.timeout(180_000);
    const why =
      (await dockerUnavailable()) ||
      (spawnSync('skopeo', ['--version']).status !== 0 && 'skopeo is not installed') ||
      (spawnSync('umoci', ['--version']).status !== 0 && 'umoci is not installed');
    if (why) skipBecause(this, why);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ovl-docker-image-'));
    env = { ...process.env, XDG_CACHE_HOME: path.join(tmp, 'cache') };
    const root = path.join(tmp, 'rootfs');
    for (const d of ['bin', 'etc', 'app/keep', 'app/deep/a/b']) fs.mkdirSync(path.join(root, d), { recursive: true });
    fs.copyFileSync('/bin/busybox', path.join(root, 'bin/busybox'));
    fs.chmodSync(path.join(root, 'bin/busybox'), 0o755);
    for (const a of APPLETS) fs.symlinkSync('busybox', path.join(root, 'bin', a));
    fs.writeFileSync(path.join(root, 'app/greeting.txt'), 'hello\n');
    fs.writeFileSync(path.join(root, 'app/keep/k'), 'k\n');
    fs.writeFileSync(path.join(root, 'app/deep/a/b/c.txt'), 'c\n');
    fs.writeFileSync(path.join(root, 'app/conf'), 'one\n');
    const tarball = spawnSync('tar', ['-C', root, '-c', '.'], { maxBuffer: 1 << 28 }).stdout;
    docker(['import', '-', `${TAG}-base:1`], tarball);
    images.push(`${TAG}-base:1`);
    dockerBuild(`${TAG}:1`, tmp, [
      `FROM ${TAG}-base:1`,
      'RUN rm /app/greeting.txt && rm -rf /app/keep && mkdir /app/keep && echo n > /app/keep/new && echo two > /app/conf',
      'RUN echo three > /app/conf && echo 3 > /app/three',
      'RUN rm /app/conf',
      'ENV GREETING=hi',
      'CMD ["sleep", "100000"]',
    ]);
    images.push(`${TAG}:1`);
    docker(['save', '-o', path.join(tmp, 'image.tar'), `${TAG}:1`]);
    const s = spawnSync('skopeo', ['copy', '-q', `docker-archive:${path.join(tmp, 'image.tar')}`, `oci:${path.join(tmp, 'layout')}:one`], { encoding: 'utf8' });
    if (s.status !== 0) throw new Error(`skopeo copy failed: ${s.stderr}`);
  });

  after(function () {
    this.timeout(60_000);
    for (const c of containers) spawnSync('docker', ['rm', '-f', c], { stdio: 'ignore' });
    for (const i of images.reverse()) spawnSync('docker', ['rmi', '-f', i], { stdio: 'ignore' });
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  const refs = (): [string, string][] => [
    ['the Docker daemon', `${TAG}:1`],
    ['a docker save archive', path.join(tmp, 'image.tar')],
    ['an OCI layout (skopeo)', path.join(tmp, 'layout')],
  ];

  test('from the daemon, a docker save archive and an OCI layout: one merged tree, the one docker run shows', () => {
    const trees = refs().map(([what, ref]) => [what, cli(env, '--image', ref, 'tree', '/')]);
    for (const [what, t] of trees.slice(1)) assert.equal(t, trees[0][1], `${what} = ${trees[0][0]}`);
    const shown = shownByDocker(`${TAG}:1`);
    assert.match(shown, /^\/app\/keep\/new$/m);
    assert.doesNotMatch(shown, /greeting|\/app\/keep\/k|\/app\/conf/, 'whiteouts and the opaque directory hide them');
    for (const [what, ref] of refs()) assert.equal(shownByOverlay(env, ['--image', ref]), shown, `${what}: what docker run shows`);
  });

  test('a path changed in three layers and deleted in a fourth has four history entries, from each source', () => {
    for (const [what, ref] of refs()) {
      const h = cli(env, '--image', ref, 'history', '/app/conf')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { layer: number; kind: string; size?: number });
      const layers = h.map((e) => e.layer);
      assert.deepEqual(
        h.map((e) => `${e.kind} ${e.size ?? ''}`),
        ['whiteout ', 'file 6', 'file 4', 'file 4'],
        what,
      );
      assert.deepEqual(
        layers,
        [...layers].sort((a, b) => a - b),
        `${what}: top to bottom`,
      );
    }
  });

  test('edit, commit (OCI layout, docker archive, --load): the image runs with the edits, umoci unpacks the merged tree, its history has the entry', function () {
    this.timeout(180_000);
    for (const [what, ref] of refs()) {
      const up = fs.mkdtempSync(path.join(tmp, 'up-'));
      const work = fs.mkdtempSync(path.join(tmp, 'work-'));
      const stack = ['--image', ref, '--upper', up, '--work', work];
      spawnSync(process.execPath, [BIN, ...stack, 'write', '/app/edit.txt'], { env, input: 'edited\n' });
      cli(env, ...stack, 'rm', '/app/three');
      cli(env, ...stack, 'rm', '-r', '/app/deep/a');
      cli(env, ...stack, 'mkdir', '/app/deep/a');
      spawnSync(process.execPath, [BIN, ...stack, 'write', '/app/deep/a/only'], { env, input: 'o\n' });
      assert.equal(
        cli(env, ...stack, 'diff'),
        'C /app\nC /app/deep\nC /app/deep/a\nD /app/deep/a/b\nA /app/deep/a/only\nA /app/edit.txt\nD /app/three\n',
        what,
      );
      const tag = `${TAG}-out-${refs().findIndex((r) => r[1] === ref)}:2`;
      const layout = path.join(tmp, `out-layout-${path.basename(up)}`);
      const archive = path.join(tmp, `out-${path.basename(up)}.tar`);
      const id = cli(
        env,
        ...stack,
        'commit',
        '--tag',
        tag,
        '--oci-layout',
        layout,
        '--docker-archive',
        archive,
        '--load',
        '--message',
        'edited by the test',
      ).trim();
      images.push(tag);
      assert.match(id, /^sha256:[0-9a-f]{64}$/);
      assert.equal(docker(['image', 'inspect', '--format', '{{.Id}}', tag]).trim(), id, `${what}: docker loaded the image with the id printed`);
      assert.equal(shownByDocker(tag), shownByOverlay(env, stack), `${what}: docker run shows the edits, whiteouts and the opaque directory included`);
      assert.equal(docker(['run', '--rm', '--network', 'none', tag, 'sh', '-c', 'echo $GREETING']), 'hi\n', 'Env kept');
      assert.equal(docker(['image', 'inspect', '--format', '{{json .Config.Cmd}}', tag]).trim(), '["sleep","100000"]', 'Cmd kept');
      const hist = docker(['history', '--no-trunc', '--format', '{{.CreatedBy}}|{{.Comment}}', tag]).split('\n');
      assert.equal(hist[0], 'overlayws commit|edited by the test', `${what}: the commit's history entry on top`);
      assert.match(hist[1], /CMD/, 'the base history kept below it');
      // umoci: the layout unpacks to the merged tree
      const bundle = path.join(tmp, `bundle-${path.basename(up)}`);
      const u = spawnSync('umoci', ['unpack', ...(process.getuid?.() === 0 ? [] : ['--rootless']), '--image', `${layout}:2`, bundle], { encoding: 'utf8' });
      assert.equal(u.status, 0, u.stderr);
      assert.equal(treeOf(path.join(bundle, 'rootfs')), cli(env, ...stack, 'tree', '/'), `${what}: umoci unpack = the merged tree`);
      // the archive alone loads too (what --load loaded was written the same way)
      assert.ok(fs.statSync(archive).size > 0);
    }
  });

  test('a running container: diff equals docker diff; commit by --spec without stopping it runs with its changes', function () {
    this.timeout(180_000);
    const name = `${TAG}-ctr`;
    docker(['run', '-d', '--network', 'none', '--name', name, `${TAG}:1`]);
    containers.push(name);
    docker([
      'exec',
      name,
      'sh',
      '-c',
      'rm /app/keep/new && echo x > /app/keep/x && rm -rf /app/deep && mkdir -p /app/deep/z && echo z > /app/deep/z/z && rm /bin/xargs && echo c > /etc/made',
    ]);
    fs.writeFileSync(path.join(tmp, 'inspect.json'), docker(['inspect', name]));
    const spec = ['--spec', path.join(tmp, 'inspect.json')];
    const theirs = docker(['diff', name]).trim().split('\n').sort();
    const ours = cli(env, ...spec, 'diff')
      .trim()
      .split('\n')
      .sort();
    assert.deepEqual(ours, theirs, 'overlayws diff = docker diff');
    const tag = `${TAG}-ctr-commit:1`;
    cli(env, ...spec, 'commit', '--tag', tag, '--load');
    images.push(tag);
    assert.equal(docker(['inspect', '--format', '{{.State.Running}} {{.State.Paused}}', name]).trim(), 'true false', 'still running, not left paused');
    assert.equal(
      docker([
        'run',
        '--rm',
        '--network',
        'none',
        tag,
        'sh',
        '-c',
        'cat /etc/made /app/keep/x /app/deep/z/z; ls /app/deep /app/keep; ls /bin/xargs 2>&1 || true',
      ]),
      docker(['exec', name, 'sh', '-c', 'cat /etc/made /app/keep/x /app/deep/z/z; ls /app/deep /app/keep; ls /bin/xargs 2>&1 || true']),
      'the committed image shows what the container shows',
    );
  });
});
