/** Node-style errors: `code`, `syscall`, `path`, message like Node's own. */

const MESSAGES: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EEXIST: 'file already exists',
  ENOTDIR: 'not a directory',
  EISDIR: 'illegal operation on a directory',
  ENOTEMPTY: 'directory not empty',
  EROFS: 'read-only file system',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EINVAL: 'invalid argument',
  ELOOP: 'too many symbolic links encountered',
  EXDEV: 'cross-device link not permitted',
  EBUSY: 'resource busy or locked',
  EBADF: 'bad file descriptor',
  ENOTSUP: 'operation not supported',
  ENAMETOOLONG: 'name too long',
};

const OWN = Symbol('overlayError');

export interface OverlayError extends Error {
  code: string;
  syscall?: string;
  path?: string;
  dest?: string;
  /** The message without code, syscall or path ("no such file or directory"). */
  description: string;
}

export function createError(code: string, syscall: string, path?: string, detail?: string, dest?: string): OverlayError {
  let message = `${code}: ${detail ?? MESSAGES[code] ?? 'error'}, ${syscall}`;
  if (path !== undefined) message += ` '${path}'`;
  if (dest !== undefined) message += ` -> '${dest}'`;
  const err = new Error(message) as OverlayError;
  err.code = code;
  Object.defineProperty(err, OWN, { value: true });
  err.description = detail ?? MESSAGES[code] ?? 'error';
  err.syscall = syscall;
  if (path !== undefined) err.path = path;
  if (dest !== undefined) err.dest = dest;
  return err;
}

export function isErrno(err: unknown, ...codes: string[]): boolean {
  return typeof err === 'object' && err !== null && codes.includes((err as { code?: string }).code ?? '');
}

/** Re-throw an error from a real layer path as one about the overlay path. */
export function asOverlayError(err: unknown, syscall: string, path: string): OverlayError {
  if (typeof err === 'object' && err !== null && (err as Record<symbol, unknown>)[OWN]) return err as OverlayError;
  if (typeof err === 'object' && err !== null && typeof (err as { code?: unknown }).code === 'string') {
    const code = (err as { code: string }).code;
    return createError(code, syscall, path, MESSAGES[code] ? undefined : String((err as Error).message ?? code));
  }
  return createError('EIO', syscall, path, String(err));
}
