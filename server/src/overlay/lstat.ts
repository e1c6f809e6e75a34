/** lstat of layer paths: "not there" is undefined (it falls through to the next layer), anything else is an answer. */
import * as fs from 'node:fs';
import { isErrno } from './errors';
import { encodePath } from './names';
import type { EntryType } from './types';

export function lstatOrUndefined(p: string): fs.Stats | undefined {
  try {
    // No Error built for the common miss (most names are absent from most layers).
    return fs.lstatSync(encodePath(p), { throwIfNoEntry: false });
  } catch (err) {
    // Only "not there" falls through to the next layer; EACCES, EIO... are real answers.
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) return undefined;
    throw err;
  }
}

export function typeOf(st: fs.Stats | fs.Dirent): EntryType {
  if (st.isFile()) return 'f';
  if (st.isDirectory()) return 'd';
  if (st.isSymbolicLink()) return 'l';
  if (st.isCharacterDevice()) return 'c';
  if (st.isBlockDevice()) return 'b';
  if (st.isFIFO()) return 'p';
  return 's';
}
