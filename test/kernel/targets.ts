/**
 * Something the random operations run against, next to the kernel mount: the engine, a
 * fuse-overlayfs mount, or a second kernel mount (self-check of the harness).
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { Overlay } from '../../server/src/overlay/index';
import { applyEngine, applyShell, EngineOps, Op, opCliArgs, OpResult } from './ops';
import { dumpEngine, dumpMount, EngineView } from './tree';
import { isMounted, mountFuse, mountKernel, OverlayDirs, unmount } from './shell';

export interface Target {
  name: string;
  upperDir: string;
  apply(op: Op): Promise<OpResult>;
  /** Merged view dump; `kernelRoot` is the reference mount (for symlink-escape decisions). */
  dumpMerged(kernelRoot: string): Promise<string[]>;
  /** Release mounts/handles. Must not throw. */
  close(): Promise<void>;
}

export class MountTarget implements Target {
  private constructor(
    readonly name: string,
    private readonly d: OverlayDirs,
  ) {}

  static open(name: string, d: OverlayDirs, kind: 'kernel' | 'fuse'): MountTarget {
    if (kind === 'kernel') mountKernel(d);
    else mountFuse(d);
    return new MountTarget(name, d);
  }

  get upperDir(): string {
    return this.d.upper;
  }

  apply(op: Op): Promise<OpResult> {
    return applyShell(op, this.d.merged);
  }

  async dumpMerged(): Promise<string[]> {
    return dumpMount(this.d.merged).lines;
  }

  async close(): Promise<void> {
    if (isMounted(this.d.merged)) unmount(this.d.merged);
  }
}

/** What the suite needs from `Overlay`. */
export interface EngineHandle extends EngineOps, EngineView {
  close(): unknown;
}

export interface EngineModule {
  Overlay: {
    open(spec: { lower: string[]; upper?: string; work?: string; whiteouts?: 'kernel' | 'oci' | 'auto' }): Promise<EngineHandle>;
  };
}

export class EngineTarget implements Target {
  private constructor(
    readonly name: string,
    readonly ov: EngineHandle,
    readonly upperDir: string,
  ) {}

  static async open(mod: EngineModule, d: OverlayDirs, whiteouts: 'kernel' | 'oci' = 'kernel', name = 'engine'): Promise<EngineTarget> {
    const ov = await mod.Overlay.open({ lower: d.lower, upper: d.upper, work: d.work, whiteouts });
    return new EngineTarget(name, ov, d.upper);
  }

  apply(op: Op): Promise<OpResult> {
    return applyEngine(op, this.ov);
  }

  dumpMerged(kernelRoot: string): Promise<string[]> {
    return dumpEngine(this.ov, kernelRoot);
  }

  async close(): Promise<void> {
    try {
      await this.ov.close();
    } catch {
      // closing must not mask the real result
    }
  }
}

/** bin/overlayws.js of this checkout. */
export const OVERLAYWS = path.resolve(__dirname, '../../../bin/overlayws.js');

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run overlayws with `args` (umask 022 and the C locale, as the shell commands run), optionally as another user. */
export function runOverlayws(args: string[], input?: string, asUser?: { uid: number; gid: number }): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const argv = ['-c', 'umask 022; exec "$@"', 'sh', process.execPath, OVERLAYWS, ...args];
    const child = asUser
      ? spawn('setpriv', [`--reuid=${asUser.uid}`, `--regid=${asUser.gid}`, '--clear-groups', '/bin/sh', ...argv], { env: { ...process.env, LC_ALL: 'C' } })
      : spawn('/bin/sh', argv, { env: { ...process.env, LC_ALL: 'C' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(input ?? '');
  });
}

/** What a finished overlayws run says about the operation: exit 0 ok, 1 with its errno, 2 a usage error. */
export function cliResult(r: CliRun): OpResult {
  if (r.code === 0) return { ok: true, codes: [], exit: 0 };
  const m = /^overlayws: ([A-Z][A-Z0-9]*): /.exec(r.stderr);
  return { ok: false, codes: r.code === 1 && m ? [m[1]] : [], exit: r.code, detail: r.stderr.trim().split('\n')[0] };
}

/**
 * The overlayws CLI (bin/overlayws.js, one process per command) on a copy of the stack; `live`:
 * the copy is itself mounted, so the CLI writes through that kernel mount (cliWrites.ts liveWrites).
 */
export class CliTarget implements Target {
  private constructor(
    readonly name: string,
    private readonly d: OverlayDirs,
    private readonly live: boolean,
    private readonly whiteouts: 'kernel' | 'oci' = 'kernel',
    private readonly asUser?: { uid: number; gid: number },
  ) {}

  static open(name: string, d: OverlayDirs, live: boolean, whiteouts: 'kernel' | 'oci' = 'kernel', asUser?: { uid: number; gid: number }): CliTarget {
    if (live) mountKernel(d);
    return new CliTarget(name, d, live, whiteouts, asUser);
  }

  get upperDir(): string {
    return this.d.upper;
  }

  get stackArgs(): string[] {
    return [
      '--lower',
      this.d.lower.map((l) => l.replace(/:/g, '\\:')).join(':'),
      '--upper',
      this.d.upper,
      '--work',
      this.d.work,
      '--whiteouts',
      this.whiteouts,
    ];
  }

  async apply(op: Op): Promise<OpResult> {
    const { args, input } = opCliArgs(op);
    return cliResult(await runOverlayws([...this.stackArgs, ...args], input, this.asUser));
  }

  async dumpMerged(kernelRoot: string): Promise<string[]> {
    if (this.live) return dumpMount(this.d.merged).lines;
    const ov = await Overlay.open({ lower: this.d.lower, upper: this.d.upper, work: this.d.work, whiteouts: this.whiteouts });
    try {
      return await dumpEngine(ov, kernelRoot);
    } finally {
      await ov.close();
    }
  }

  async close(): Promise<void> {
    if (this.live && isMounted(this.d.merged)) unmount(this.d.merged);
  }
}

/** The engine, statically imported (type-checked against this suite's needs). */
export function loadEngine(): { mod?: EngineModule; reason?: string } {
  return { mod: { Overlay } };
}
