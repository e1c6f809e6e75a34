/** Server errors (ResponseError with OverlayErrorData) mapped once to vscode.FileSystemError. */
import * as vscode from 'vscode';
import { ErrorCodes, ResponseError } from 'vscode-languageclient/node';
import { OVERLAY_ERROR, type OverlayErrorData } from '../../shared/src/protocol';

/** The error's Node code when the server (or Node) gave one. */
export function errorCode(err: unknown): string | undefined {
  return errorData(err)?.code;
}

/** The error's Node code and system call when the server (or Node) gave them. */
function errorData(err: unknown): { code: string; syscall?: string } | undefined {
  if (err instanceof ResponseError && err.code === OVERLAY_ERROR) return err.data as OverlayErrorData | undefined;
  const e = err as NodeJS.ErrnoException | undefined;
  return typeof e?.code === 'string' ? { code: e.code, syscall: e.syscall } : undefined;
}

/** The request never reached a running server, or the server went away before answering. */
export function isConnectionError(err: unknown): boolean {
  return err instanceof ResponseError && (err.code === ErrorCodes.ConnectionInactive || err.code === ErrorCodes.PendingResponseRejected);
}

export function toFileSystemError(err: unknown, uri: vscode.Uri): Error {
  if (err instanceof vscode.FileSystemError) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (isConnectionError(err)) {
    return vscode.FileSystemError.Unavailable(
      `${uri.toString(true)}: the overlay server stopped before confirming (${message}). Writes are atomic: the file is either unchanged or complete — save again to be sure`,
    );
  }
  const data = errorData(err);
  switch (data?.code) {
    // As VS Code's own disk provider (diskFileSystemProvider.ts toFileSystemProviderError) maps them.
    case 'ENOENT':
      return vscode.FileSystemError.FileNotFound(uri);
    case 'ENOTDIR':
      return vscode.FileSystemError.FileNotADirectory(uri);
    case 'EEXIST':
      return vscode.FileSystemError.FileExists(uri);
    case 'EISDIR':
      return vscode.FileSystemError.FileIsADirectory(uri);
    case 'EROFS':
    case 'EACCES':
    case 'EPERM':
      return vscode.FileSystemError.NoPermissions(`${uri.toString(true)}: ${message}`);
    case 'EBUSY':
    case 'EAGAIN':
      return vscode.FileSystemError.Unavailable(`${uri.toString(true)}: ${message}`);
    case 'EINVAL':
      // The server never opens what is neither a file nor a directory (a FIFO, a device):
      // the disk provider refuses to read one the same way ("File is not a regular file").
      if (data?.syscall === 'open') return vscode.FileSystemError.Unavailable(`${uri.toString(true)}: ${message}`);
      return new vscode.FileSystemError(`${uri.toString(true)}: ${message}`);
    default:
      return new vscode.FileSystemError(`${uri.toString(true)}: ${message}`);
  }
}

/**
 * The provider code VS Code's disk provider gives a write refused (EACCES, EPERM) to a file
 * whose owner may not write it: "write locked". The API has no factory for it; VS Code
 * reads the code from the error's name (`<code> (FileSystemError)`, its own convention),
 * spelled `EntryWriteLocked` since the codes were renamed from `FileWriteLocked`: the
 * spelling of this VS Code's codes is read off an error it makes.
 */
export function writeLocked(uri: vscode.Uri, message: string): vscode.FileSystemError {
  const err = new vscode.FileSystemError(`${uri.toString(true)}: ${message}`);
  const prefix = /^(Entry|File)NotFound \(FileSystemError\)$/.exec(vscode.FileSystemError.FileNotFound().name)?.[1] ?? 'Entry';
  Object.defineProperty(err, 'name', { value: `${prefix}WriteLocked (FileSystemError)`, configurable: true, writable: true });
  return err;
}
