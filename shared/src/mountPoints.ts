/**
 * Where the server mounts an overlay: `<runtime dir>/<NAME>.<HASH>`, NAME the overlay's name
 * (bytes outside [A-Za-z0-9_-] as %XX) and HASH 12 hex digits of the stack. The server makes
 * these paths (server/src/mounting/); the extension reads them back, so that a window that
 * reopens a workspace whose folder is such a path (unmounted since) finds the definition in
 * `overlay.overlays` and mounts it again. Plain strings: no Node, no VS Code.
 */

const HASH = /^[0-9a-f]{12}$/;

/** The last component of the mount point of overlay `name` whose stack hashes to `hash`. */
export function mountPointName(name: string, hash: string): string {
  const enc = encodeURIComponent(name).replace(/[.!~*'()]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `${enc}.${hash}`;
}

/** The overlay name and stack hash a mount point's last component encodes, or undefined when it is none of ours. */
export function parseMountPointName(base: string): { name: string; hash: string } | undefined {
  const dot = base.lastIndexOf('.');
  if (dot <= 0 || !HASH.test(base.slice(dot + 1))) return undefined;
  const enc = base.slice(0, dot);
  if (!/^(?:[A-Za-z0-9_-]|%[0-9A-F]{2})+$/.test(enc)) return undefined;
  try {
    return { name: decodeURIComponent(enc), hash: base.slice(dot + 1) };
  } catch {
    return undefined;
  }
}

/** `path` (absolute, '/'-separated) when it is a mount point of ours directly under `runtimeDir`, parsed; else undefined. */
export function ourMountPoint(runtimeDir: string, path: string): { name: string; hash: string } | undefined {
  const dir = runtimeDir.replace(/\/+$/, '');
  const p = path.replace(/\/+$/, '');
  if (!p.startsWith(dir + '/')) return undefined;
  const rest = p.slice(dir.length + 1);
  return rest.includes('/') ? undefined : parseMountPointName(rest);
}
