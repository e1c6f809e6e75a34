/**
 * overlayws and the processes that still read a stale copy (holders/):
 *   - `holders PATH`: one line per process holding the lower copy of PATH open or mapped —
 *     and, for a mounted stack, the merged file through the kernel mount —
 *     `PID<TAB>open|mapped<TAB>COMMAND<TAB>CONTAINER`, nothing when none;
 *   - `write`, `append` and `truncate`: after a write that copied a file up, one
 *     `overlayws: warning: ...` line per holder on stderr (the exit status stays the command's).
 */
import type { Overlay } from './overlay';
import { staleReaderLine } from '../../shared/src/holders';
import { findHolders, type CopiedFile, type Holder } from './holders/index';
import type { Writes } from './cliWrites';

/** Tabs and line breaks in a command line would break the line format: spaces instead. */
const oneField = (s: string): string => s.replace(/[\t\n\r]/g, ' ');

/** The CONTAINER column: Docker's name, else the short id of a Docker container, else empty. */
function containerColumn(h: Holder): string {
  return h.container ?? h.containerId?.slice(0, 12) ?? '';
}

export function holderLine(h: Holder): string {
  return `${h.pid}\t${h.how}\t${oneField(h.command)}\t${oneField(containerColumn(h))}`;
}

/** The file at overlay path `p` (symlinks already followed), as the holder scan needs it. */
async function copiedFile(ov: Overlay, p: string, merged: string | undefined): Promise<CopiedFile> {
  const lower = await ov.lowerResolve(p);
  const file: CopiedFile = { path: p, merged };
  if (lower && lower.type === 'f' && typeof lower.layer === 'number') file.lower = { realPath: lower.realPath, layerRoot: ov.stack.lower[lower.layer] };
  return file;
}

/**
 * `holders PATH` (`p` with symlinks followed). For a mounted stack the merged file counts as
 * well: /proc shows no difference between who opened or mapped it before a copy-up and who
 * did after (the kernel keeps its device and inode), so every process that has it open or
 * mapped through the mount is listed.
 */
export async function holdersCommand(
  ov: Overlay,
  p: string,
  merged: string | undefined,
  out: (line: string) => void,
  note: (line: string) => void,
): Promise<void> {
  const file = await copiedFile(ov, p, merged);
  if (!file.lower && !file.merged) return;
  const report = await findHolders([file], { sliceMs: Infinity });
  for (const h of report.holders[0]) out(holderLine(h));
  if (report.uninspectable > 0)
    note(
      `overlayws: note: ${report.uninspectable} process${report.uninspectable === 1 ? '' : 'es'} could not be inspected (not ours to read: run as root to see them); they may hold it too`,
    );
}

/**
 * `w` whose whole-file writes, appends and truncates warn, one line each, about the processes
 * that still read the old copy of a file they copied up. `name` prints an overlay path as the
 * user named it (a URI when the command was given URIs).
 */
export function warnStaleReaders(ov: Overlay, w: Writes, merged: string | undefined, warn: (line: string) => void, name: (p: string) => string): Writes {
  const watched =
    <A extends unknown[]>(write: (p: string, ...args: A) => Promise<void>) =>
    async (p: string, ...args: A): Promise<void> => {
      const before = await ov.lstat(p).catch(() => undefined);
      const file = before?.type === 'f' && before.layer !== 'upper' ? await copiedFile(ov, p, merged) : undefined;
      await write(p, ...args);
      if (!file) return;
      const after = await ov.lstat(p).catch(() => undefined);
      if (after?.layer !== 'upper') return;
      const report = await findHolders([file], { sliceMs: Infinity });
      for (const h of report.holders[0]) warn(`overlayws: warning: ${staleReaderLine(h, name(p))} (${h.how})`);
    };
  return { ...w, writeFile: watched(w.writeFile), appendFile: watched(w.appendFile), truncate: watched(w.truncate) };
}
