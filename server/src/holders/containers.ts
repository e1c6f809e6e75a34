/**
 * The container a process runs in: its id from /proc/PID/cgroup (Docker's cgroup paths,
 * `/docker/ID` with the cgroupfs driver, `/system.slice/docker-ID.scope` with systemd, cgroup
 * v1 or v2), and the container's name from `docker inspect`, asked once for all the ids not
 * yet known and cached. Without Docker (not installed, no daemon) the ids stay unnamed.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';

const DOCKER_ID = /\/docker[-/]([0-9a-f]{64})(?:\.scope)?(?:\/|$)/m;

/** The Docker container id in `pid`'s cgroups, if any. */
export function containerIdOf(pid: number): string | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8');
  } catch {
    return undefined;
  }
  return DOCKER_ID.exec(text)?.[1];
}

/** How long an answer is kept: a name (containers are seldom renamed), no such container, no Docker. */
const KEEP_NAME_MS = 60_000;
const KEEP_MISS_MS = 5_000;
const KEEP_NO_DOCKER_MS = 30_000;

/** Names of Docker containers by id, from `docker inspect`, cached. */
export class ContainerNames {
  private readonly known = new Map<string, { name?: string; at: number }>();
  private noDockerAt = -Infinity;

  constructor(
    private readonly docker = process.env.OVERLAY_DOCKER ?? 'docker',
    private readonly timeoutMs = 5_000,
  ) {}

  /** Names of `ids` (those Docker knows), asking Docker in one call for the ones not cached. */
  async names(ids: Iterable<string>): Promise<Map<string, string>> {
    const now = Date.now();
    const wanted = [...new Set(ids)];
    const ask = wanted.filter((id) => {
      const k = this.known.get(id);
      return !k || now - k.at > (k.name ? KEEP_NAME_MS : KEEP_MISS_MS);
    });
    if (ask.length > 0 && now - this.noDockerAt > KEEP_NO_DOCKER_MS) {
      const answered = await this.inspect(ask);
      if (answered === undefined) this.noDockerAt = now;
      for (const id of ask) this.known.set(id, { name: answered?.get(id), at: now });
    }
    const out = new Map<string, string>();
    for (const id of wanted) {
      const name = this.known.get(id)?.name;
      if (name) out.set(id, name);
    }
    return out;
  }

  /** `docker inspect` of the ids: id → name; undefined when Docker did not answer at all. */
  private inspect(ids: string[]): Promise<Map<string, string> | undefined> {
    return new Promise((resolve) => {
      execFile(
        this.docker,
        ['inspect', '--type', 'container', '--format', '{{.Id}} {{.Name}}', ...ids],
        { timeout: this.timeoutMs, encoding: 'utf8' },
        (err, stdout, stderr) => {
          // An unknown id makes docker exit 1 after printing the others.
          const out = new Map<string, string>();
          for (const line of (stdout ?? '').split('\n')) {
            const m = /^([0-9a-f]{64}) \/?(.+)$/.exec(line.trim());
            if (m) out.set(m[1], m[2]);
          }
          if (err && out.size === 0 && !/no such (container|object)/i.test(stderr ?? '')) resolve(undefined);
          else resolve(out);
        },
      );
    });
  }
}
