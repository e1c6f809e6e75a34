/** What the kernel has mounted, read from /proc/self/mountinfo: for the server tier and the e2e suite alike. */
import * as fs from 'node:fs';

/** The type of what is mounted at `dir` now (mount point escapes of spaces decoded), or undefined. */
export function mountedType(dir: string): string | undefined {
  const line = fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .find((l) => l.split(' ')[4]?.replace(/\\040/g, ' ') === dir);
  return line ? line.split(' - ')[1].split(' ')[0] : undefined;
}
