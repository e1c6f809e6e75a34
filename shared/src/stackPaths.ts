/**
 * Where the layer paths of an `overlay.overlays` entry point: relative paths resolve against the
 * folder of the `.code-workspace` file (or whatever base the caller has), `~/` against the home
 * directory. The extension (client/src/config.ts) and `overlayws --workspace` both use this.
 */
import { URI, Utils } from 'vscode-uri';
import type { StackSpec } from './protocol';

/**
 * An absolute file-system path for `p` as written in the setting. (`.path` rather than `.fsPath`:
 * fsPath turns '/c:x' into a Windows drive path on every platform; overlay layers are Linux paths.)
 */
export function resolveSettingPath(base: string, home: string, p: string): string {
  if (p.startsWith('~/')) return Utils.joinPath(URI.file(home), p.slice(2)).path;
  return Utils.resolvePath(URI.file(base), p).path;
}

/** `spec` with every directory absolute. */
export function resolveStackPaths(spec: StackSpec, base: string, home: string): StackSpec {
  const abs = (p: string): string => resolveSettingPath(base, home, p);
  return {
    ...spec,
    lower: spec.lower.map(abs),
    upper: spec.upper ? abs(spec.upper) : undefined,
    work: spec.work ? abs(spec.work) : undefined,
    merged: spec.merged ? abs(spec.merged) : undefined,
  };
}
