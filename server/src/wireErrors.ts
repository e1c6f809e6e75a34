/**
 * Engine errors → wire errors, in one place. The engine throws Node-style errors
 * (code, syscall, path); the server answers with a ResponseError whose data keeps
 * the code so the client can map it once to vscode.FileSystemError.
 */
import { createError } from './overlay/errors';
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

/** A malformed request parameter. */
export function invalidParam(method: string, what: string): Error {
  return createError('EINVAL', method, undefined, `malformed params: ${what}`);
}

type Params = Record<string, unknown>;

/** Checked access to request params: anything malformed throws EINVAL naming the field. */
export class ParamReader {
  private readonly p: Params;
  constructor(
    readonly method: string,
    params: unknown,
  ) {
    if (typeof params !== 'object' || params === null || Array.isArray(params)) throw invalidParam(method, 'params must be an object');
    this.p = params as Params;
  }

  str(key: string): string {
    const v = this.p[key];
    if (typeof v !== 'string') throw invalidParam(this.method, `"${key}" must be a string`);
    return v;
  }

  optStr(key: string): string | undefined {
    return this.p[key] === undefined || this.p[key] === null ? undefined : this.str(key);
  }

  bool(key: string, dflt: boolean): boolean {
    const v = this.p[key];
    if (v === undefined || v === null) return dflt;
    if (typeof v !== 'boolean') throw invalidParam(this.method, `"${key}" must be a boolean`);
    return v;
  }

  int(key: string, dflt?: number): number {
    const v = this.p[key] ?? dflt;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw invalidParam(this.method, `"${key}" must be a non-negative integer`);
    return v;
  }

  /** base64 data */
  bytes(key: string): Buffer {
    const v = this.str(key);
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(v) || v.length % 4 === 1) throw invalidParam(this.method, `"${key}" must be base64`);
    return Buffer.from(v, 'base64');
  }

  obj(key: string): Params {
    const v = this.p[key];
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw invalidParam(this.method, `"${key}" must be an object`);
    return v as Params;
  }
}
