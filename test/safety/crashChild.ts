/**
 * Crash-test worker: opens the overlay in this process and hammers it with copy-ups,
 * chmods and whole-file writes, printing one line per step so the parent (crash.test.ts)
 * knows what was acknowledged before it SIGKILLs us at a random moment.
 *   ready PID | start PATH TAG SIZE | ack PATH TAG | cstart PATH | cack PATH
 * Pipes are synchronous on Linux, so a line is in the parent's pipe before the next step.
 */
import { Overlay, type StackSpec } from '../../server/src/overlay';
import { contentFor, prng } from './crashContent';

interface Job {
  spec: StackSpec;
  small: string[];
  large: string[];
  seed: number;
  round: number;
  workers: number;
}

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2]) as Job;
  const ov = await Overlay.open(job.spec);
  const say = (s: string): void => {
    process.stdout.write(s + '\n');
  };
  say(`ready ${process.pid}`);
  const rnd = prng(job.seed);
  const all = [...job.large, ...job.small];
  let seq = 0;
  const worker = async (w: number): Promise<void> => {
    const mine = all.filter((_, i) => i % job.workers === w);
    // Large files first: each round starts by copying them up, so kills land mid-copy.
    for (const p of mine.filter((x) => job.large.includes(x))) {
      say(`cstart ${p}`);
      await ov.copyUpPath(p);
      say(`cack ${p}`);
    }
    for (;;) {
      const p = mine[rnd.int(mine.length)];
      const r = rnd.next();
      if (r < 0.25) {
        say(`cstart ${p}`);
        if (r < 0.12) await ov.chmod(p, 0o640);
        else await ov.copyUpPath(p);
        say(`cack ${p}`);
      } else {
        const tag = `${job.round}.${w}.${seq++}`;
        const size = job.large.includes(p) && rnd.next() < 0.3 ? (1 << 20) + rnd.int(1 << 21) : 1 + rnd.int(32768);
        say(`start ${p} ${tag} ${size}`);
        await ov.writeFile(p, contentFor(p, tag, size));
        say(`ack ${p} ${tag}`);
      }
    }
  };
  await Promise.all(Array.from({ length: job.workers }, (_, w) => worker(w)));
}

main().catch((err: unknown) => {
  process.stdout.write(`error ${(err as Error).stack?.replace(/\n/g, ' | ')}\n`);
  process.exit(3);
});
