/**
 * Something the random operations run against, next to the kernel mount: the engine, a
 * fuse-overlayfs mount, or a second kernel mount (self-check of the harness).
 */
import { Overlay } from '../../server/src/overlay/index';
import { applyEngine, applyShell, EngineOps, Op, OpResult } from './ops';
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

/** The engine, statically imported (type-checked against this suite's needs). */
export function loadEngine(): { mod?: EngineModule; reason?: string } {
  return { mod: { Overlay } };
}
