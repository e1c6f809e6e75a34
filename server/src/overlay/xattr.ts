/** Extended attributes through @napi-rs/xattr (N-API, prebuilt), loaded lazily. */
import { createError } from './errors';

interface XattrLib {
  getAttributeSync(path: string, name: string): Buffer | null | undefined;
  setAttributeSync(path: string, name: string, value: Buffer): void;
  removeAttributeSync(path: string, name: string): void;
  listAttributesSync(path: string): string[];
}

let lib: XattrLib | undefined;
let loadError: unknown;

function load(): XattrLib {
  if (lib) return lib;
  if (loadError === undefined) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      lib = require('@napi-rs/xattr') as XattrLib;
      return lib;
    } catch (err) {
      loadError = err;
    }
  }
  throw createError('ENOTSUP', 'xattr', undefined,
    `extended attributes are unavailable (@napi-rs/xattr could not be loaded: ${String((loadError as Error)?.message ?? loadError)}); kernel-format opaque directories need them — use whiteouts "oci" or install @napi-rs/xattr for this platform`);
}

export function xattrAvailable(): boolean {
  try { load(); return true; } catch { return false; }
}

/** Value of an xattr, or undefined when it is not set (or xattrs are unsupported on that file). */
export function getXattr(path: string, name: string): Buffer | undefined {
  let x: XattrLib;
  try { x = load(); } catch { return undefined; }
  try {
    return x.getAttributeSync(path, name) ?? undefined;
  } catch {
    return undefined;
  }
}

export function setXattr(path: string, name: string, value: Buffer | string): void {
  const x = load();
  try {
    x.setAttributeSync(path, name, Buffer.isBuffer(value) ? value : Buffer.from(value));
  } catch (err) {
    throw createError((err as { code?: string }).code ?? 'ENOTSUP', 'setxattr', path, `cannot set ${name}: ${(err as Error).message}`);
  }
}

export function removeXattr(path: string, name: string): void {
  try { load().removeAttributeSync(path, name); } catch { /* absent */ }
}

export function listXattrs(path: string): string[] {
  try { return load().listAttributesSync(path); } catch { return []; }
}
