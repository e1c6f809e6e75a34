/**
 * Engine errors → wire errors, in one place. The engine throws Node-style errors
 * (code, syscall, path); the server answers with a ResponseError whose data keeps
 * the code so the client can map it once to vscode.FileSystemError.
 */
import type { OverlayErrorData } from '../../shared/src/protocol';

export interface WireError {
  message: string;
  data: OverlayErrorData;
}

/** Message and data of the ResponseError for any thrown value. */
export function toWireError(err: unknown): WireError {
  if (typeof err === 'object' && err !== null && typeof (err as { code?: unknown }).code === 'string') {
    const e = err as { code: string; message?: string; path?: unknown; dest?: unknown; syscall?: unknown };
    const data: OverlayErrorData = { code: e.code };
    if (typeof e.path === 'string') data.path = e.path;
    if (typeof e.dest === 'string') data.dest = e.dest;
    if (typeof e.syscall === 'string') data.syscall = e.syscall;
    return { message: String(e.message ?? e.code), data };
  }
  return { message: `EIO: ${err instanceof Error ? err.message : String(err)}`, data: { code: 'EIO' } };
}
