/**
 * A Docker daemon for the tests that need one: the one that answers, else (as root, with
 * dockerd installed) one started here (as .ci/run does) and left running for the next tier;
 * else the reason to skip. Commands run with their output captured; a failure throws with it.
 */
import { spawn, spawnSync } from 'node:child_process';

const answers = (): boolean => spawnSync('docker', ['info'], { stdio: 'ignore', timeout: 20_000 }).status === 0;

/** Why Docker cannot be used here, or false when a daemon answers (started when needed). */
export async function dockerUnavailable(): Promise<string | false> {
  if (spawnSync('docker', ['--version']).status !== 0) return 'the docker command is not installed (apt-get install -y docker.io)';
  if (answers()) return false;
  if (process.getuid?.() !== 0) return 'no Docker daemon answers and only root starts one';
  if (spawnSync('dockerd', ['--version']).status !== 0) return 'no Docker daemon answers and dockerd is not installed';
  const d = spawn('dockerd', ['--iptables=false', '--bridge=none', '--storage-driver=overlay2'], { detached: true, stdio: 'ignore' });
  d.unref();
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (answers()) return false;
    await new Promise((r) => setTimeout(r, 500));
  }
  return 'dockerd was started but did not answer within 60 s';
}

/** `docker ARGS` (stdin `input`), its stdout; throws with stderr when it fails. */
export function docker(args: string[], input?: string | Buffer): string {
  const r = spawnSync('docker', args, { input, encoding: 'utf8', maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`docker ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}
