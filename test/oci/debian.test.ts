/**
 * `overlayws diff` equals `docker diff` line for line on a container of a real Debian image: a
 * minbase bookworm root made with debootstrap from Debian's mirror (cached as a tarball in
 * $OVERLAY_TEST_CACHE, default ~/.cache/overlayws-test, keyed by suite and month: a cold run
 * takes the debootstrap, 40 s to 1.5 min here; a warm one seconds), imported with `docker import`, two
 * `RUN` layers (whiteouts, an opaque directory, deep deletions), and changes made inside the
 * running container (the same kinds, and deep in /usr/share/zoneinfo). Skips, saying why,
 * without Docker, root or debootstrap, or when the mirror cannot be reached on a cold cache.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'mocha';
import { skipBecause } from '../mocha/skip';
import { docker, dockerBuild, dockerUnavailable } from '../mocha/docker';

const BIN = path.resolve(__dirname, '../../../bin/overlayws.js');
const SUITE = 'bookworm';
const MIRROR = 'http://deb.debian.org/debian';
const TAG = `overlayws-test-debian-${process.pid}`;

/** The cached minbase root tarball, made with debootstrap when missing; a reason to skip when it cannot be. */
function debianTarball(): { file: string } | { skip: string } {
  const cache = process.env.OVERLAY_TEST_CACHE ?? path.join(os.homedir(), '.cache/overlayws-test');
  const file = path.join(cache, `debian-${SUITE}-minbase-${new Date().toISOString().slice(0, 7)}.tar`);
  if (fs.existsSync(file)) return { file };
  if (spawnSync('debootstrap', ['--version']).status !== 0 && !fs.existsSync('/usr/sbin/debootstrap')) return { skip: 'debootstrap is not installed' };
  fs.mkdirSync(cache, { recursive: true });
  const root = fs.mkdtempSync(path.join(cache, 'debootstrap-'));
  try {
    const started = Date.now();
    const d = spawnSync('debootstrap', ['--variant=minbase', SUITE, root, MIRROR], { encoding: 'utf8', maxBuffer: 1 << 26 });
    if (d.status !== 0) return { skip: `debootstrap from ${MIRROR} failed (offline?): ${(d.stderr || d.stdout).trim().split('\n').slice(-2).join(' ')}` };
    const tmp = `${file}.${process.pid}.tmp`;
    const t = spawnSync('tar', ['--numeric-owner', '--xattrs', '-C', root, '-cf', tmp, '.']);
    if (t.status !== 0) throw new Error(`tar of the debootstrap root failed: ${String(t.stderr)}`);
    fs.renameSync(tmp, file);
    console.log(`      # debootstrap ${SUITE} minbase took ${Math.round((Date.now() - started) / 1000)} s; cached as ${file}`);
    return { file };
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

describe('docker diff on a real Debian image', function () {
  let tmp: string;
  const images: string[] = [];
  const name = `${TAG}-ctr`;
  let started = false;

  before(async function () {
    this.timeout(20 * 60_000);
    if (process.getuid?.() !== 0) skipBecause(this, 'debootstrap and docker import need root');
    const why = await dockerUnavailable();
    if (why) skipBecause(this, why);
    const tarball = debianTarball();
    if ('skip' in tarball) skipBecause(this, tarball.skip);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ovl-debian-'));
    const imported = spawnSync('docker', ['import', tarball.file, `${TAG}-base:1`], { encoding: 'utf8' });
    if (imported.status !== 0) throw new Error(`docker import failed: ${imported.stderr}`);
    images.push(`${TAG}-base:1`);
    dockerBuild(`${TAG}:1`, tmp, [
      `FROM ${TAG}-base:1`,
      'RUN rm -rf /usr/share/doc/apt && rm /etc/issue.net && mkdir -p /opt/layer1 && echo one > /opt/layer1/f',
      'RUN rm -rf /usr/share/zoneinfo/Asia && echo two > /opt/layer1/f && rm -rf /var/lib/apt/lists && mkdir -p /var/lib/apt/lists && echo l > /var/lib/apt/lists/only',
      'CMD ["sleep", "100000"]',
    ]);
    images.push(`${TAG}:1`);
    docker(['run', '-d', '--network', 'none', '--name', name, `${TAG}:1`]);
    started = true;
    docker([
      'exec',
      name,
      'sh',
      '-c',
      [
        'rm /usr/share/zoneinfo/Europe/Berlin', // a deep deletion
        'rm -rf /usr/share/zoneinfo/America', // a deep directory deletion
        'rm /etc/debian_version', // a whiteout of the base layer's file
        'rm -rf /var/cache/apt && mkdir /var/cache/apt && echo o > /var/cache/apt/only', // an opaque directory
        'rm -rf /var/lib/apt/lists && mkdir /var/lib/apt/lists', // opaque over a layer's opaque directory
        'echo three > /opt/layer1/f', // a file of a RUN layer changed again
        'mkdir -p /root/new/deep && echo n > /root/new/deep/file', // added
        'chmod 700 /usr/share/zoneinfo/UTC', // metadata only (a copy-up)
        'touch /usr/bin/dpkg', // times only
      ].join(' && '),
    ]);
  });

  after(function () {
    this.timeout(60_000);
    if (started) spawnSync('docker', ['rm', '-f', name], { stdio: 'ignore' });
    for (const i of images.reverse()) spawnSync('docker', ['rmi', '-f', i], { stdio: 'ignore' });
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  test('overlayws --spec (docker inspect) diff = docker diff, line for line', function () {
    this.timeout(120_000);
    fs.writeFileSync(path.join(tmp, 'inspect.json'), docker(['inspect', name]));
    const ours = spawnSync(process.execPath, [BIN, '--spec', path.join(tmp, 'inspect.json'), 'diff'], { encoding: 'utf8', maxBuffer: 1 << 26 });
    assert.equal(ours.status, 0, ours.stderr);
    const theirs = docker(['diff', name]);
    assert.ok(theirs.split('\n').length > 20, `docker diff has the changes: ${theirs}`);
    assert.match(theirs, /^C \/usr\/share\/zoneinfo$/m);
    assert.match(theirs, /^D \/usr\/share\/zoneinfo\/America$/m);
    assert.match(theirs, /^C \/var\/cache\/apt$/m);
    // docker diff's order is that of Go map iteration (moby's ChangesDirs walks children maps):
    // the same lines, in another order each run; overlayws prints them sorted by path.
    const lines = (s: string): string[] => s.split('\n').filter(Boolean);
    const byPath = (a: string, b: string): number => Buffer.compare(Buffer.from(a.slice(2)), Buffer.from(b.slice(2)));
    assert.deepEqual(lines(ours.stdout), [...lines(ours.stdout)].sort(byPath), 'overlayws diff is sorted by path');
    assert.deepEqual(lines(ours.stdout), lines(theirs).sort(byPath));
    console.log(`      # ${lines(theirs).length} changes, the same lines from both`);
  });
});
