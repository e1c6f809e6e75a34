/**
 * Processes that hold files, for the tests of the holder scan. Node cannot mmap a file by
 * itself, so the helper is a small python3 program (python3 is on the machine; its `mmap`
 * module), written to a temp file and started with the files to hold:
 *   open   — each file opened for reading (one byte read), kept open;
 *   mapped — each file mapped, then every fd closed (Python's mmap keeps a dup of the fd:
 *            that one is closed too), so only the mapping holds it;
 *   closed — each file opened, read and closed: holds nothing.
 * It prints `ready` once it holds them, and ends when its stdin closes.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const PROGRAM = `import mmap, os, sys
how, files = sys.argv[1], sys.argv[2:]
keep = []
for p in files:
    f = open(p, 'rb')
    if how == 'open':
        f.read(1)
        keep.append(f)
    elif how == 'mapped':
        before = set(os.listdir('/proc/self/fd'))
        m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
        for fd in set(os.listdir('/proc/self/fd')) - before:
            try:
                os.close(int(fd))
            except OSError:
                pass
        f.close()
        m[0]
        keep.append(m)
    else:
        f.read()
        f.close()
print('ready', flush=True)
sys.stdin.read()
`;

export type HoldHow = 'open' | 'mapped' | 'closed';

/** Why the helper cannot run here, or undefined. */
export const noPython =
  spawnSync('python3', ['-c', 'import mmap'], { timeout: 10_000 }).status === 0 ? undefined : 'python3 with its mmap module is not installed';

let programFile: string | undefined;

export interface HeldBy {
  pid: number;
  child: ChildProcess;
  /** Closes its stdin and waits for it to end. */
  stop(): Promise<void>;
}

export async function holdFiles(how: HoldHow, files: string[], user?: { uid: number; gid: number }): Promise<HeldBy> {
  if (!programFile) {
    programFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'overlayws-holder-')), 'hold.py');
    fs.writeFileSync(programFile, PROGRAM);
    fs.chmodSync(path.dirname(programFile), 0o755);
    fs.chmodSync(programFile, 0o644);
  }
  const child = spawn('python3', [programFile, how, ...files], { stdio: ['pipe', 'pipe', 'pipe'], ...user });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`the ${how} holder ended (${code}) before holding ${files.join(', ')}: ${err}`)));
  });
  return {
    pid: child.pid as number,
    child,
    async stop() {
      child.stdin!.end();
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    },
  };
}
