/**
 * Extended attributes through @napi-rs/xattr (N-API, prebuilt), loaded lazily. It takes
 * paths as (UTF-8) strings only, never bytes: a path with escaped bytes (names.ts) goes
 * through withStringPath, which reaches directories and files in them, but not a
 * non-directory whose own name is not UTF-8: for one, reads see no xattrs and a set is
 * refused (ENOTSUP), as on a filesystem without them.
 */
import { createError } from './errors';
import { withStringPath } from './names';

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
  throw createError(
    'ENOTSUP',
    'xattr',
    undefined,
    `extended attributes are unavailable (@napi-rs/xattr could not be loaded: ${String((loadError as Error)?.message ?? loadError)}); kernel-format opaque directories need them — use whiteouts "oci" or install @napi-rs/xattr for this platform`,
  );
}

export function xattrAvailable(): boolean {
  try {
    load();
    return true;
  } catch {
    return false;
  }
}

/** Value of an xattr, or undefined when it is not set (or xattrs are unsupported on that file). */
export function getXattr(path: string, name: string): Buffer | undefined {
  let x: XattrLib;
  try {
    x = load();
  } catch {
    return undefined;
  }
  try {
    return withStringPath(path, (p) => x.getAttributeSync(p, name)) ?? undefined;
  } catch {
    return undefined;
  }
}

export function setXattr(path: string, name: string, value: Buffer | string): void {
  const x = load();
  try {
    const done = withStringPath(path, (p) => {
      x.setAttributeSync(p, name, Buffer.isBuffer(value) ? value : Buffer.from(value));
      return true;
    });
    if (!done) throw Object.assign(new Error('@napi-rs/xattr cannot name a file whose own name is not valid UTF-8'), { code: 'ENOTSUP' });
  } catch (err) {
    throw createError((err as { code?: string }).code ?? 'ENOTSUP', 'setxattr', path, `cannot set ${name}: ${(err as Error).message}`);
  }
}

export function removeXattr(path: string, name: string): void {
  try {
    const x = load();
    withStringPath(path, (p) => x.removeAttributeSync(p, name));
  } catch {
    /* absent */
  }
}

export function listXattrs(path: string): string[] {
  try {
    const x = load();
    return withStringPath(path, (p) => x.listAttributesSync(p)) ?? [];
  } catch {
    return [];
  }
}
