/**
 * Runtime checks of protocol params, one per `Params` type, declared beside it in
 * protocol.ts. `object<T>({...})` wants a check for EVERY key of T (optional keys
 * included), so a field added to a `Params` interface without its check does not
 * compile. A failed check throws a ParamError: a Node-style EINVAL naming the field,
 * which the server sends like any engine error.
 *
 * Hand-written (about 80 lines) rather than zod or ajv: the checks must produce the
 * house's Node-style errors and be tied to hand-written interfaces key by key; both
 * libraries would need a mapping layer as large as this file.
 */

/** A malformed request parameter: EINVAL, the message names the method and the field. */
export class ParamError extends Error {
  readonly code = 'EINVAL';
  readonly syscall: string;
  constructor(method: string, what: string) {
    super(`EINVAL: malformed params: ${what}, ${method}`);
    this.syscall = method;
  }
}

/** Checks `v` (found at `at`, e.g. '"path"') and returns it typed, or throws a string saying what is wrong. */
export type Check<T> = (v: unknown, at: string) => T;

class Bad {
  constructor(readonly what: string) {}
}
const bad = (at: string, want: string): Bad => new Bad(`${at} must be ${want}`);

export const str: Check<string> = (v, at) => {
  if (typeof v !== 'string') throw bad(at, 'a string');
  return v;
};

export const bool: Check<boolean> = (v, at) => {
  if (typeof v !== 'boolean') throw bad(at, 'a boolean');
  return v;
};

/** A non-negative safe integer. */
export const count: Check<number> = (v, at) => {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw bad(at, 'a non-negative integer');
  return v;
};

/** base64 text (the data of writes). */
export const base64: Check<string> = (v, at) => {
  if (typeof v !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(v) || v.length % 4 === 1) throw bad(at, 'base64');
  return v;
};

/** One of the given string literals. */
export function oneOf<L extends string>(...values: L[]): Check<L> {
  return (v, at) => {
    if (typeof v !== 'string' || !(values as string[]).includes(v)) throw bad(at, values.map((x) => JSON.stringify(x)).join(' or '));
    return v as L;
  };
}

/** Absent or null gives undefined. */
export function optional<T>(check: Check<T>): Check<T | undefined> {
  return (v, at) => (v === undefined || v === null ? undefined : check(v, at));
}

export function array<T>(check: Check<T>): Check<T[]> {
  return (v, at) => {
    if (!Array.isArray(v)) throw bad(at, 'a list');
    return v.map((x, i) => check(x, `${at}[${i}]`));
  };
}

/** A plain object whose every own key maps to a T. */
export function record<T>(check: Check<T>): Check<Record<string, T>> {
  return (v, at) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad(at, 'an object');
    const out: Record<string, T> = {};
    for (const [k, x] of Object.entries(v)) out[k] = check(x, `${at}.${k}`);
    return out;
  };
}

/** No params: absent, null, [] or {} (what JSON-RPC clients send for none). */
export const absent: Check<undefined> = (v, at) => {
  const empty = v === undefined || v === null || (typeof v === 'object' && Object.keys(v).length === 0);
  if (!empty) throw bad(at, 'absent');
  return undefined;
};

/**
 * An object with exactly the checked keys of T (others are dropped). Optional keys come
 * out absent rather than undefined, so results compare equal to what a caller built.
 */
export function object<T>(shape: { [K in keyof T]-?: Check<T[K]> }): Check<T> {
  return (v, at) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad(at, 'an object');
    const src = v as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(shape) as (keyof T & string)[]) {
      const value = shape[key](Object.prototype.hasOwnProperty.call(src, key) ? src[key] : undefined, at === 'params' ? `"${key}"` : `${at}.${key}`);
      if (value !== undefined) out[key] = value;
    }
    return out as T;
  };
}

/** Runs a params check for `method`, turning what it finds into a ParamError. */
export function checkParams<T>(method: string, check: Check<T>, params: unknown): T {
  try {
    return check(params, 'params');
  } catch (err) {
    if (err instanceof Bad) throw new ParamError(method, err.what);
    throw err;
  }
}
