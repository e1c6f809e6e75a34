/** Server errors (ResponseError with OverlayErrorData) mapped once to vscode.FileSystemError. */
import * as vscode from 'vscode';
import { ErrorCodes, ResponseError } from 'vscode-languageclient/node';
import { OVERLAY_ERROR, type OverlayErrorData } from '../../shared/src/protocol';

/** The error's Node code when the server (or Node) gave one. */
export function errorCode(err: unknown): string | undefined {
  if (err instanceof ResponseError && err.code === OVERLAY_ERROR) return (err.data as OverlayErrorData | undefined)?.code;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
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
  switch (errorCode(err)) {
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
    default:
      return new vscode.FileSystemError(`${uri.toString(true)}: ${message}`);
  }
}
