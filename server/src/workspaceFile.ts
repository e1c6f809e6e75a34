/**
 * The overlays a `.code-workspace` file defines: its `overlay.overlays` setting, read the way VS Code
 * reads the file (JSON with comments and trailing commas) and with layer paths resolved as the
 * extension resolves them (shared/src/stackPaths.ts).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parse, printParseErrorCode, type ParseError } from 'jsonc-parser';
import type { StackSpec } from '../../shared/src/protocol';
import { resolveStackPaths } from '../../shared/src/stackPaths';
import { createError } from './overlay';

const SETTING = 'overlay.overlays';

export interface WorkspaceOverlays {
  file: string;
  /** Every entry of the setting, paths as written (validated when one is picked). */
  raw: Record<string, unknown>;
}

function lineAndColumn(text: string, offset: number): string {
  const before = text.slice(0, offset).split('\n');
  return `line ${before.length}, column ${before[before.length - 1].length + 1}`;
}

/** Read `file` and its `overlay.overlays` setting (dotted or nested form, as VS Code accepts both). */
export function readWorkspaceFile(file: string): WorkspaceOverlays {
  const text = fs.readFileSync(file, 'utf8');
  const errors: ParseError[] = [];
  const json = parse(text, errors, { allowTrailingComma: true, disallowComments: false }) as unknown;
  if (errors.length > 0) {
    const e = errors[0];
    throw createError('EINVAL', 'open', file, `not a workspace file: ${printParseErrorCode(e.error)} at ${lineAndColumn(text, e.offset)}`);
  }
  const settings = isObject(json) && isObject(json.settings) ? json.settings : {};
  const nested = isObject(settings.overlay) ? settings.overlay.overlays : undefined;
  const value = settings[SETTING] ?? nested ?? {};
  if (!isObject(value)) throw createError('EINVAL', 'open', file, `"${SETTING}" must be an object of named stacks`);
  return { file, raw: value };
}

/**
 * The stack `name` with absolute paths. A name that matches no entry exactly may match one
 * entry ignoring case (VS Code prints URI authorities in lower case).
 */
export function workspaceStack(ws: WorkspaceOverlays, name: string): StackSpec | undefined {
  let key: string | undefined = Object.hasOwn(ws.raw, name) ? name : undefined;
  if (key === undefined) {
    const folded = Object.keys(ws.raw).filter((k) => k.toLowerCase() === name.toLowerCase());
    if (folded.length === 1) key = folded[0];
  }
  if (key === undefined) return undefined;
  const spec = ws.raw[key];
  const bad = (why: string): never => {
    throw createError('EINVAL', 'open', ws.file, `"${SETTING}" entry ${JSON.stringify(key)}: ${why}`);
  };
  if (!isObject(spec)) return bad('must be an object');
  if (!Array.isArray(spec.lower) || spec.lower.length === 0 || !spec.lower.every((d) => typeof d === 'string' && d !== ''))
    return bad('"lower" must be a non-empty array of directories');
  for (const k of ['upper', 'work', 'merged'] as const) if (spec[k] !== undefined && typeof spec[k] !== 'string') bad(`"${k}" must be a string`);
  if (spec.whiteouts !== undefined && !['kernel', 'oci', 'auto'].includes(spec.whiteouts as string)) bad('"whiteouts" must be kernel, oci or auto');
  if (spec.userxattr !== undefined && typeof spec.userxattr !== 'boolean') bad('"userxattr" must be true or false');
  return resolveStackPaths(spec as unknown as StackSpec, path.dirname(path.resolve(ws.file)), os.homedir());
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
