/**
 * One case on both sides and what differs: the trees before, the outcomes, the trees after;
 * cases run several at a time; a difference printed with the case and how to replay it.
 */
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { describeOp, type Case } from './cases';
import { fifosUnder, type StackLayers } from './layers';
import { fifosOpenedBy, perform, releaseFifo, walk, withFifoPartners, type Outcome } from './run';
import type { Side } from './sides';

/** One case on one side: both trees before, both outcomes, both trees after. */
export interface Run {
  readonly side: Side;
  readonly c: Case;
  readonly overlay: { before: string[]; outcome: Outcome; after: string[] };
  readonly file: { before: string[]; outcome: Outcome; after: string[] };
}

/** A difference the overlay must make, with its reason. */
export interface Exception {
  readonly id: string;
  /** Why the overlay must answer differently from the disk. */
  readonly reason: string;
  /** Does this exception explain the difference in `r`? */
  explains(r: Run): boolean;
}

/** Where a case runs: its stack, the stack's root on the side under test and in the reference copy. */
export interface Where {
  readonly stack: StackLayers;
  readonly overlay: vscode.Uri;
  readonly file: vscode.Uri;
}

export const ok = (o: Outcome) => o.text.startsWith('ok');
export const same = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x, i) => x === b[i]);
/** Walk lines without those of `rel` and below (relative to the case's directory). */
export const without = (lines: readonly string[], rel: string) => lines.filter((l) => !(rel && (l.startsWith(`${rel} `) || l.startsWith(`${rel}/`))));

export function equal(r: Run): boolean {
  return same(r.overlay.before, r.file.before) && r.overlay.outcome.text === r.file.outcome.text && same(r.overlay.after, r.file.after);
}

export async function runCase(side: Side, where: Where, c: Case): Promise<Run> {
  const at = (root: vscode.Uri) => (c.dir ? vscode.Uri.joinPath(root, c.dir) : root);
  const s = where.stack;
  const [ovBefore, fileBefore] = await Promise.all([walk(at(where.overlay)), walk(at(where.file))]);
  // An operation that hangs on the overlay side (it opened a FIFO in a layer): wake it.
  const unblockLayers = () => {
    for (const l of [s.upper, ...s.lower]) for (const f of fifosUnder(path.join(l, c.dir))) releaseFifo(f);
  };
  const plan = fifosOpenedBy(c, s.ref);
  // A mounted side is a file: folder too: the disk provider opens its FIFOs, which need a partner as the reference's do.
  const mountedPlan = where.overlay.scheme === 'file' ? fifosOpenedBy(c, where.overlay.fsPath) : undefined;
  const [overlayOutcome, fileOutcome] = await Promise.all([
    perform(where.overlay, c, mountedPlan ? (fn) => withFifoPartners(mountedPlan, fn) : undefined, unblockLayers),
    perform(where.file, c, plan ? (fn) => withFifoPartners(plan, fn) : undefined),
  ]);
  const [ovAfter, fileAfter] = await Promise.all([walk(at(where.overlay)), walk(at(where.file))]);
  return {
    side,
    c,
    overlay: { before: ovBefore, outcome: overlayOutcome, after: ovAfter },
    file: { before: fileBefore, outcome: fileOutcome, after: fileAfter },
  };
}

/** Cases run this many at a time (each in its own directory); those with a FIFO run alone. */
const CONCURRENCY = 6;

/**
 * Runs every case and returns the runs in the cases' order. A FIFO partner waits in open(2)
 * on a thread of the extension host's pool (4 threads), so cases with a FIFO run one at a
 * time, after the others.
 */
export async function runCases(side: Side, cases: readonly Case[], where: (c: Case) => Where): Promise<Run[]> {
  const fifo = (c: Case) => c.kinds.some((k) => k.startsWith('FIFO'));
  const out = new Map<Case, Run>();
  const pool = async (list: Case[], limit: number) => {
    let next = 0;
    const worker = async () => {
      while (next < list.length) {
        const c = list[next++];
        out.set(c, await runCase(side, where(c), c));
      }
    };
    await Promise.all(Array.from({ length: Math.min(limit, list.length) }, worker));
  };
  await pool(
    cases.filter((c) => !fifo(c)),
    CONCURRENCY,
  );
  await pool(cases.filter(fifo), 1);
  return cases.map((c) => {
    const r = out.get(c);
    assert.ok(r);
    return r;
  });
}

function treeDiff(a: readonly string[], b: readonly string[]): string[] {
  const A = new Set(a);
  const B = new Set(b);
  return [...a.filter((l) => !B.has(l)).map((l) => `      - ${l}`), ...b.filter((l) => !A.has(l)).map((l) => `      + ${l}`)];
}

/** The case, both outcomes, what differs in the trees, and the command that replays it. */
export function report(r: Run, replay: string): string {
  const c = r.c;
  const lines = [`${c.id} ${describeOp(c)}  [${c.kinds.join(' → ')}]`];
  if (!same(r.overlay.before, r.file.before))
    lines.push('    trees differ BEFORE the operation (- overlay, + file:):', ...treeDiff(r.overlay.before, r.file.before));
  const msg = (o: Outcome) => (o.message ? `  (${o.message.slice(0, 160)})` : '');
  lines.push(`    overlay: ${r.overlay.outcome.text}${msg(r.overlay.outcome)}`, `    file:    ${r.file.outcome.text}${msg(r.file.outcome)}`);
  if (!same(r.overlay.after, r.file.after)) lines.push('    trees after (- overlay, + file:):', ...treeDiff(r.overlay.after, r.file.after));
  lines.push(`    replay: ${replay}`);
  return lines.join('\n');
}
