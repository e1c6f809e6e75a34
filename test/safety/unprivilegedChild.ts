/**
 * The engine as an unprivileged user (engineAsNobody() in helpers.ts spawns this as
 * uid/gid 65534): opens each stack of the job, then runs the operations on the first one
 * that opened, and prints one JSON report. Permission checks never fire for root, so the
 * tests of unreadable directories need this process.
 */
import { Overlay, type StackSpec } from '../../server/src/overlay';

export type Op = ['readdir' | 'stat' | 'lstat' | 'readFile' | 'unlink' | 'rmdir', string] | ['writeFile', string, string] | ['mkdir', string];
export interface Job {
  opens: StackSpec[];
  ops: Op[];
}
export type Outcome = { ok: true; value: unknown } | { ok: false; code?: string; message: string };
export interface Report {
  uid: number;
  opens: Outcome[];
  ops: Outcome[];
}

async function run(ov: Overlay, op: Op): Promise<unknown> {
  switch (op[0]) {
    case 'readdir':
      return (await ov.readdir(op[1])).map((e) => e.name).sort();
    case 'stat':
    case 'lstat': {
      const st = await ov[op[0]](op[1]);
      return { type: st.type, mode: st.mode, layer: st.layer, realPath: st.realPath };
    }
    case 'readFile':
      return (await ov.readFile(op[1])).toString();
    case 'writeFile':
      return ov.writeFile(op[1], op[2]);
    case 'mkdir':
      return ov.mkdir(op[1]);
    case 'unlink':
      return ov.unlink(op[1]);
    case 'rmdir':
      return ov.rmdir(op[1]);
  }
}

async function outcome(f: () => Promise<unknown>): Promise<Outcome> {
  try {
    return { ok: true, value: (await f()) ?? null };
  } catch (err) {
    const e = err as { code?: string; message?: string };
    return { ok: false, code: e.code, message: e.message ?? String(err) };
  }
}

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2]) as Job;
  const report: Report = { uid: process.getuid?.() ?? -1, opens: [], ops: [] };
  let ov: Overlay | undefined;
  for (const spec of job.opens) {
    report.opens.push(
      await outcome(async () => {
        const o = await Overlay.open(spec);
        if (ov) await o.close();
        else ov = o;
        return o.stack;
      }),
    );
  }
  for (const op of job.ops) report.ops.push(ov ? await outcome(() => run(ov as Overlay, op)) : { ok: false, message: 'no stack opened' });
  await ov?.close();
  process.stdout.write(JSON.stringify(report) + '\n');
}

main().catch((err: unknown) => {
  process.stdout.write(JSON.stringify({ crash: String((err as Error).stack ?? err) }) + '\n');
  process.exit(3);
});
