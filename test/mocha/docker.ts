/**
 * A real Docker for the tests that need one (the server and oci tiers and the e2e suite, which all
 * build on this project): the daemon that answers, or — as root, when none does — one started
 * here (`dockerd --iptables=false --bridge=none --storage-driver=overlay2`, as .ci/run starts
 * it) and stopped by its PID; images made offline from busybox-static (no registry is
 * reachable); containers with names of their own, removed afterwards.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export interface Docker {
  /** Stops the daemon if this module started it (by its PID). */
  stop(): Promise<void>;
}

function answers(): boolean {
  return spawnSync('docker', ['info', '--format', '{{.Driver}}'], { encoding: 'utf8', timeout: 15_000 }).status === 0;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A Docker daemon that answers, or why there is none (a skip reason). `keep`: a daemon started
 * here is left running for the next tier (its stop() does nothing), as the oci tier wants.
 */
export async function dockerDaemon(opts: { keep?: boolean } = {}): Promise<Docker | string> {
  if (spawnSync('docker', ['--version']).error) return 'docker is not installed (apt-get install docker.io)';
  if (answers()) return { stop: async () => undefined };
  if (process.getuid?.() !== 0) return 'no Docker daemon answers, and starting one needs root';
  const log = path.join(os.tmpdir(), `overlayws-test-dockerd-${process.pid}.log`);
  const out = fs.openSync(log, 'w');
  const child = spawn('dockerd', ['--iptables=false', '--bridge=none', '--storage-driver=overlay2'], { detached: true, stdio: ['ignore', out, out] });
  fs.closeSync(out);
  if (opts.keep) child.unref();
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('error', () => undefined);
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline && child.exitCode === null && !answers()) await sleep(200);
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const killed = setTimeout(() => child.kill('SIGKILL'), 20_000);
    await exited;
    clearTimeout(killed);
  };
  if (!answers()) {
    await stop();
    return `dockerd did not start (see ${log})`;
  }
  return opts.keep ? { stop: async () => undefined } : { stop };
}

/** Why Docker cannot be used here, or false when a daemon answers (one started here stays for the next tier). */
export async function dockerUnavailable(): Promise<string | false> {
  const d = await dockerDaemon({ keep: true });
  return typeof d === 'string' ? d : false;
}

/** `docker ARGS` (stdin `input`), its stdout; throws with stderr when it fails. */
export function docker(args: string[], input?: string | Buffer): string {
  const r = spawnSync('docker', args, { input, encoding: 'utf8', maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`docker ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

/** `docker build` of a Dockerfile of `lines` in `dir`, offline and without BuildKit (no registry is reachable), tagged `tag`. */
export function dockerBuild(tag: string, dir: string, lines: string[]): void {
  fs.writeFileSync(path.join(dir, 'Dockerfile'), [...lines, ''].join('\n'));
  const b = spawnSync('docker', ['build', '-q', '--network', 'none', '-t', tag, dir], {
    env: { ...process.env, DOCKER_BUILDKIT: '0' },
    encoding: 'utf8',
  });
  if (b.status !== 0) throw new Error(`docker build failed: ${b.stderr}`);
}

const BUSYBOX_APPLETS = ['sh', 'cat', 'ls', 'echo', 'sleep', 'rm', 'mkdir'];

/**
 * An image made offline: busybox-static and `files` (path → content) in one layer, tagged
 * `tag`. Returns its removal.
 */
export function busyboxImage(tag: string, files: Record<string, string>): () => void {
  const busybox = ['/bin/busybox', '/usr/bin/busybox'].find((p) => fs.existsSync(p));
  if (!busybox) throw new Error('busybox-static is not installed (apt-get install busybox-static)');
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'overlayws-image-'));
  try {
    fs.mkdirSync(path.join(root, 'bin'));
    fs.copyFileSync(busybox, path.join(root, 'bin/busybox'));
    fs.chmodSync(path.join(root, 'bin/busybox'), 0o755);
    for (const a of BUSYBOX_APPLETS) fs.symlinkSync('busybox', path.join(root, 'bin', a));
    for (const [p, content] of Object.entries(files)) {
      fs.mkdirSync(path.join(root, path.dirname(p)), { recursive: true });
      fs.writeFileSync(path.join(root, p), content);
    }
    const tar = spawnSync('tar', ['-C', root, '-c', '.'], { maxBuffer: 64 * 1024 * 1024 });
    execFileSync('docker', ['import', '-', tag], { input: tar.stdout, stdio: ['pipe', 'ignore', 'pipe'] });
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
  return () => void spawnSync('docker', ['rmi', '-f', tag]);
}

export interface Container {
  name: string;
  /** `docker inspect` of it, now. */
  inspect(): { Id: string; State: { Pid: number; Running: boolean; StartedAt: string }; GraphDriver: { Data: Record<string, string> } };
  remove(): void;
}

/** `docker run -d --network none --name NAME IMAGE CMD...` */
export function runContainer(name: string, image: string, cmd: string[]): Container {
  execFileSync('docker', ['run', '-d', '--network', 'none', '--name', name, image, ...cmd], { stdio: 'pipe' });
  return {
    name,
    inspect: () => JSON.parse(execFileSync('docker', ['inspect', '--type', 'container', name], { encoding: 'utf8' }))[0],
    remove: () => void spawnSync('docker', ['rm', '-f', name]),
  };
}

/** Pids of the processes whose parent is `pid` (a container's processes below its init). */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(e));
    } catch {
      /* ended */
    }
  }
  return out;
}
