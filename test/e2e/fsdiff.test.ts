/**
 * Differential suite: every `workspace.fs` operation, over a generated set of cases, on an
 * overlay folder and on a `file:` copy of the same merged tree, in this real VS Code. VS Code
 * decides what the editor, the explorer and other extensions do from the errors and stats a
 * provider gives, so the overlay provider must answer as VS Code's disk provider does.
 *
 * For each side (fsdiff/sides.ts) the cases (fsdiff/cases.ts: entry kinds × operations, from
 * one seed) are written as layers (fsdiff/layers.ts); the reference is a plain copy of the
 * merged tree taken through a kernel overlay mount of the same layers. Each case compares
 * (fsdiff/compare.ts) the trees before (both sides must start identical), the outcome (the
 * result, or the FileSystemError code) and the trees after; at the end, the tree the kernel
 * (for the fuse-overlayfs side: fuse-overlayfs) sees in the layers the overlay left equals
 * the reference's, and no lower layer was
 * written. Every difference is either named in EXCEPTIONS with its reason (the counts are
 * printed) or fails the test with the case, both outcomes and how to replay it.
 *
 * `workspace.fs.writeFile` has no create/overwrite flags: VS Code calls every provider's
 * writeFile with both set (its extension-host shortcut and its file service alike). The
 * flags a user can give are WorkspaceEdit.createFile's overwrite and ignoreIfExists, which
 * VS Code checks against the provider's stat before writing: those are the `createFile` cases.
 *
 * The extension host (and the overlay server) run as root here, so mode bits stop nothing:
 * mode 000 and 0444 entries read and write as any other. Immutable files (chattr +i) stand in
 * for what may not be written: EPERM, and for a file without its owner's write bit the disk
 * provider's "write locked". For a user who is not root, the disk provider meets EACCES
 * from the kernel where the overlay engine meets it from its own check of the merged inode's
 * mode (server/src/overlay/permission.ts, as overlayfs checks) or from the real file it
 * opens; both map to NoPermissions, and a refused write to a 0444 file to write locked.
 * That path is not run here.
 *
 * OVERLAY_FSDIFF_SEED=N replays a seed (printed at the start); OVERLAY_FSDIFF_CASE=c042,r03
 * runs only those cases.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { after, before, describe, test } from 'mocha';
import { skipBecause } from './harness';
import { describeOp, generate, writes, type Case, type CaseSet, type OpName } from './fsdiff/cases';
import { equal, ok, report, runCases, same, without, type Exception, type Where } from './fsdiff/compare';
import {
  canMakeImmutable,
  cannotMount,
  diffDumps,
  dumpTree,
  layerDir,
  makeReference,
  removeStack,
  subtree,
  withFuseView,
  withKernelView,
  writeStack,
  type StackLayers,
} from './fsdiff/layers';
import { SIDES, type Side } from './fsdiff/sides';

/**
 * Every place the overlay answers differently from VS Code's disk provider on purpose.
 * Anything else that differs fails the suite.
 */
const EXCEPTIONS: readonly Exception[] = [
  {
    id: 'read-only overlay refuses writes',
    reason:
      'An overlay without an upper layer has nowhere to write: every write answers NoPermissions (a WorkspaceEdit is not applied), whatever the disk says, and the tree stays as it was.',
    explains: (r) =>
      r.side.readOnly &&
      writes(r.c.op) &&
      (r.overlay.outcome.text === 'error NoPermissions' || (r.c.op.op === 'createFile' && r.overlay.outcome.text === 'ok applied=false')) &&
      same(r.overlay.before, r.file.before) &&
      same(r.overlay.before, r.overlay.after),
  },
  {
    id: 'read-only overlay: stat says Readonly',
    reason: 'stat on an overlay without an upper layer sets permissions Readonly, so that editors open its files read-only; a file: folder never does.',
    explains: (r) =>
      r.side.readOnly &&
      r.c.op.op === 'stat' &&
      r.overlay.outcome.text === `${r.file.outcome.text} permissions=1` &&
      same(r.overlay.before, r.file.before) &&
      same(r.overlay.after, r.file.after),
  },
  {
    id: 'a FIFO is never opened for writing or copying',
    reason:
      'The server never opens a FIFO: open(2) would block it (every request of every overlay) until another process opens the other end. The disk provider blocks the caller that way for a write or a copy (its readFile refuses with Unavailable, as the overlay does); the overlay refuses at once — a write with Unavailable (a WorkspaceEdit is not applied), a copy with Unknown (ENOTSUP) — and the FIFO stays as it was.',
    explains: (r) =>
      r.c.kinds[0].startsWith('FIFO') &&
      (r.c.op.op === 'writeFile'
        ? r.overlay.outcome.text === 'error Unavailable'
        : r.c.op.op === 'createFile'
          ? r.overlay.outcome.text === 'ok applied=false'
          : r.c.op.op === 'copy' && r.overlay.outcome.text === 'error Unknown') &&
      ok(r.file.outcome) &&
      same(r.overlay.before, r.file.before) &&
      // What VS Code does before asking the provider (parents made, an overwritten target
      // deleted) happened on both sides; only the copy is missing.
      (r.c.op.op === 'copy' ? same(without(r.overlay.after, r.c.op.to), without(r.file.after, r.c.op.to)) : same(r.overlay.before, r.overlay.after)),
  },
  {
    id: 'an entry even root may not delete is NoPermissions',
    reason:
      "A recursive delete of an immutable file (chattr +i) fails with EPERM. The disk provider deletes through Node's fs.rm, which then retries with rmdir(2) and reports its ENOTDIR: FileNotADirectory. The overlay reports the cause, NoPermissions. (VS Code deletes an overwritten rename or copy target the same way.)",
    explains: (r) =>
      r.c.kinds.some((k) => k.startsWith('immutable')) &&
      (r.c.op.op === 'delete' ? r.c.op.recursive === true : (r.c.op.op === 'rename' || r.c.op.op === 'copy') && r.c.op.overwrite) &&
      r.file.outcome.text === 'error FileNotADirectory' &&
      r.overlay.outcome.text === 'error NoPermissions' &&
      same(r.overlay.before, r.file.before) &&
      same(r.overlay.after, r.file.after),
  },
  {
    id: 'an absolute symlink resolves inside the overlay',
    reason:
      "A symlink with an absolute target resolves inside the overlay's merged root, as a container sees its image (README: symlinks never leave the overlay); in a file: folder it resolves on the host. The link itself is the same on both sides.",
    explains: (r) => r.side.scheme === 'overlay' && r.c.kinds.includes('absolute symlink'),
  },
  {
    id: "an overlay's root cannot be deleted",
    reason:
      "The root of an overlay:// folder is its mount point: deleting it is refused (EBUSY, as rmdir(2) of a mount point answers; VS Code shows Unavailable) and nothing below it is removed. A file: folder's directory is simply deleted (or, not empty and not recursive, refused as Unknown).",
    explains: (r) =>
      r.side.scheme === 'overlay' &&
      r.c.dir === '' &&
      r.c.op.op === 'delete' &&
      r.c.op.path === '' &&
      ['error Unavailable', 'error NoPermissions'].includes(r.overlay.outcome.text) &&
      same(r.overlay.before, r.file.before) &&
      same(r.overlay.before, r.overlay.after),
  },
  {
    id: "a mounted folder's root cannot be deleted",
    reason:
      "The root of a mounted folder is the mount point: rmdir(2) of it answers EBUSY (kernel and fuse-overlayfs alike), which VS Code's disk provider reports as Unknown, and nothing below it is removed. A file: folder's directory is simply deleted. (overlay:// answers the same refusal as Unavailable: the exception above.)",
    explains: (r) =>
      r.side.scheme === 'file' &&
      r.c.dir === '' &&
      r.c.op.op === 'delete' &&
      r.c.op.path === '' &&
      r.overlay.outcome.text === 'error Unknown' &&
      /\bEBUSY\b/.test(r.overlay.outcome.message ?? '') &&
      same(r.overlay.before, r.file.before) &&
      same(r.overlay.before, r.overlay.after),
  },
  {
    id: 'fuse-overlayfs: a file it could not unlink is reported deleted',
    reason:
      "fuse-overlayfs 1.10 answers unlink(2) of an immutable upper file (chattr +i) with EPERM, but its listing right after no longer has the file (checked by hand: `fs.unlinkSync('mnt/imm')` → EPERM, then `readdir` lacks imm). VS Code's disk provider, going on with its recursive delete, then finds nothing and answers as done, where on a file: folder (and on the kernel's mount) it reports ENOTDIR from its rmdir(2) retry; a copy with overwrite goes on to a missing source. The file stays in the upper and is listed again: the trees after are the file: copy's.",
    explains: (r) => {
      const op = r.c.op;
      const target = op.op === 'delete' && op.recursive ? op.path : (op.op === 'rename' || op.op === 'copy') && op.overwrite ? op.to : undefined;
      return (
        r.side.mountedBy === 'fuse-overlayfs' &&
        target !== undefined &&
        r.c.kinds.some((k) => k.startsWith('immutable')) &&
        r.file.outcome.text === 'error FileNotADirectory' &&
        ['ok', 'error FileNotFound'].includes(r.overlay.outcome.text) &&
        same(r.overlay.before, r.file.before) &&
        same(r.overlay.after, r.file.after)
      );
    },
  },
  {
    id: 'fuse-overlayfs: a renamed FIFO of a lower layer becomes an empty file',
    reason:
      'fuse-overlayfs 1.10 copies a FIFO of a lower layer up as an empty regular file (with a user.fuseoverlayfs.origin xattr) when it is renamed; the kernel copies it up as a FIFO, and a rename on a file: folder keeps it one. Checked by hand: `mv mnt/fifo mnt/fifo2` → `-rw-r--r-- fifo2`.',
    explains: (r) => {
      const op = r.c.op;
      return (
        r.side.mountedBy === 'fuse-overlayfs' &&
        op.op === 'rename' &&
        r.c.kinds[0] === 'FIFO in a lower layer' &&
        r.overlay.outcome.text === r.file.outcome.text &&
        same(r.overlay.before, r.file.before) &&
        r.overlay.after.includes(`${op.to} File stat:File/0 da39a3ee5e6b`) &&
        r.file.after.some((l) => l.startsWith(`${op.to} Unknown`)) &&
        same(without(r.overlay.after, op.to), without(r.file.after, op.to))
      );
    },
  },
  {
    id: 'fuse-overlayfs: a renamed opaque directory uncovers the lower directory it hid',
    reason:
      'fuse-overlayfs 1.10 renames an opaque upper directory without leaving a whiteout at its old name when the directory it hides is in both lower layers (with one lower it leaves one): the lower directory, and what it held, shows there again. The kernel leaves a whiteout (its mount answers as the file: folder). Checked by hand with o1 in both lowers: after `rename(o1, x)`, `find mnt` lists o1/hidden2 and o1/sub3/c4.',
    explains: (r) => {
      const op = r.c.op;
      return (
        r.side.mountedBy === 'fuse-overlayfs' &&
        op.op === 'rename' &&
        r.c.kinds[0] === 'opaque directory' &&
        r.overlay.outcome.text === r.file.outcome.text &&
        ok(r.overlay.outcome) &&
        same(r.overlay.before, r.file.before) &&
        r.overlay.after.includes(`${op.from} Directory`) &&
        same(without(r.overlay.after, op.from), without(r.file.after, op.from))
      );
    },
  },
];

const SEED = process.env.OVERLAY_FSDIFF_SEED ? Number(process.env.OVERLAY_FSDIFF_SEED) : Math.floor(Math.random() * 2 ** 31);
const ONLY = new Set((process.env.OVERLAY_FSDIFF_CASE ?? '').split(',').filter(Boolean));

/** Which operations each test runs. */
const GROUPS: { title: string; ops: OpName[] }[] = [
  { title: 'stat, readDirectory and readFile', ops: ['stat', 'readDirectory', 'readFile'] },
  { title: 'writeFile, and WorkspaceEdit.createFile with its flags', ops: ['writeFile', 'createFile'] },
  { title: 'createDirectory', ops: ['createDirectory'] },
  { title: 'delete, with and without recursive and useTrash', ops: ['delete'] },
  { title: 'rename, with and without overwrite', ops: ['rename'] },
  { title: 'copy, with and without overwrite', ops: ['copy'] },
];

function replay(c: Case): string {
  return `OVERLAY_FSDIFF_SEED=${SEED} OVERLAY_FSDIFF_CASE=${c.id} E2E_GREP=fsdiff node scripts/start.mjs --test`;
}

/** The lower layers of the stacks as the side opens them, entry by entry (times included). */
function fingerprint(side: Side, stacks: readonly StackLayers[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const s of stacks) for (const l of side.stackOf(s).lower) for (const [k, v] of dumpTree(l, { times: true })) out.set(`${l}/${k}`, v);
  return out;
}

for (const side of SIDES) {
  describe(`fsdiff on ${side.label}`, function () {
    let set: CaseSet;
    let base: string | undefined;
    /** The shared stack, then one per root case. */
    const stacks: StackLayers[] = [];
    const stackOf = new Map<Case, StackLayers>();
    const where = new Map<StackLayers, Where>();
    let opened = false;
    let lowersBefore = new Map<string, string>();
    const explained = new Map<string, string[]>();
    /** Cases whose trees may differ at the end (explained, or reported already). */
    const differed = new Set<string>();
    let total = 0;
    let failures = 0;

    before(async function () {
      this.timeout(120_000);
      const tmp = os.tmpdir();
      const why = cannotMount(tmp) ?? side.unavailable?.();
      if (why) skipBecause(this, why);
      const all = generate(SEED);
      const pick = (cs: Case[]) => (ONLY.size ? cs.filter((c) => ONLY.has(c.id)) : cs);
      set = { seed: SEED, shared: pick(all.shared), root: pick(all.root) };
      console.log(
        `# fsdiff on ${side.label}: seed ${SEED} (OVERLAY_FSDIFF_SEED=${SEED} replays it), ${set.shared.length} cases in one stack, ${set.root.length} on a stack's root each`,
      );
      const t0 = Date.now();
      base = fs.mkdtempSync(path.join(tmp, 'overlayws-fsdiff-'));
      const immutable = canMakeImmutable(base);
      if (!immutable) console.log(`# ${base} does not take chattr +i: the immutable kinds are plain files of that mode here`);
      const shared = writeStack(path.join(base, 'shared'), set.shared, immutable);
      stacks.push(shared);
      for (const c of set.shared) stackOf.set(c, shared);
      for (const c of set.root) {
        const s = writeStack(path.join(base, c.id), [c], immutable);
        stacks.push(s);
        stackOf.set(c, s);
      }
      for (const s of stacks) makeReference(s);
      lowersBefore = fingerprint(side, stacks);
      const roots = await side.open(stacks, `${SEED.toString(36)}-${side.readOnly ? 'ro' : 'rw'}`);
      opened = true;
      stacks.forEach((s, i) => where.set(s, { stack: s, overlay: roots[i], file: vscode.Uri.file(s.ref) }));
      console.log(`# fsdiff: ${stacks.length} stacks written, copied through a kernel mount and opened in ${Date.now() - t0} ms`);
    });

    after(async function () {
      this.timeout(60_000);
      if (opened) await side.close();
      for (const s of stacks) removeStack(s);
      if (base) fs.rmSync(base, { recursive: true, force: true });
      if (!total) return;
      const n = [...explained.values()].reduce((a, b) => a + b.length, 0);
      console.log(`# fsdiff on ${side.label}: ${total} cases run, ${total - n - failures} equal, ${n} named exceptions, ${failures} unexplained`);
      for (const [id, cases] of explained)
        console.log(`#   exception "${id}": ${cases.length} (${cases.slice(0, 30).join(' ')}${cases.length > 30 ? ' …' : ''})`);
    });

    const runAll = async (cases: Case[]) => {
      const failed: string[] = [];
      const t0 = Date.now();
      const runs = await runCases(side, cases, (c) => {
        const w = where.get(stackOf.get(c) as StackLayers);
        assert.ok(w, `no stack for ${c.id}`);
        return w;
      });
      for (const r of runs) {
        total++;
        if (equal(r)) continue;
        differed.add(r.c.id);
        const ex = EXCEPTIONS.find((e) => e.explains(r));
        if (ex) explained.set(ex.id, [...(explained.get(ex.id) ?? []), r.c.id]);
        else failed.push(report(r, replay(r.c)));
      }
      failures += failed.length;
      console.log(`# ${cases.length} cases in ${Date.now() - t0} ms`);
      if (failed.length) {
        console.log(failed.join('\n'));
        assert.fail(
          `${failed.length} of ${cases.length} cases answer differently from the disk provider:\n${failed.slice(0, 15).join('\n')}${failed.length > 15 ? `\n… and ${failed.length - 15} more (all printed above)` : ''}`,
        );
      }
    };

    for (const g of GROUPS) {
      test(`fsdiff: ${g.title} answer as on a file: copy`, async function () {
        this.timeout(240_000);
        await runAll(set.shared.filter((c) => g.ops.includes(c.op.op)));
      });
    }

    test('fsdiff: every operation on the root of a stack answers as on the root of a file: copy', async function () {
      this.timeout(120_000);
      await runAll(set.root);
    });

    test('fsdiff: the layers left hold, for the kernel, the tree the file: copy holds; no lower layer was written', async function () {
      this.timeout(120_000);
      const problems: string[] = [];
      const written = diffDumps(lowersBefore, fingerprint(side, stacks));
      if (written.length) problems.push(`lower layers changed:\n${written.slice(0, 40).join('\n')}`);
      let compared = 0;
      const mnt = path.join(base as string, 'final-mnt');
      for (const s of stacks) {
        const cases = [...set.shared, ...set.root].filter((c) => stackOf.get(c) === s && !differed.has(c.id));
        if (!cases.length) continue;
        // The upper the overlay left, over the lowers, as the kernel merges them (an upper
        // fuse-overlayfs wrote: as fuse-overlayfs merges them, see withFuseView).
        const view = side.mountedBy === 'fuse-overlayfs' ? withFuseView : withKernelView;
        const kernel = view([layerDir(s, 'U'), ...s.lower], mnt, (dir) => dumpTree(dir));
        const reference = dumpTree(s.ref);
        for (const c of cases) {
          compared++;
          const d = diffDumps(subtree(kernel, c.dir), subtree(reference, c.dir));
          if (d.length)
            problems.push(
              `${c.id} ${describeOp(c)}: the kernel's view of the layers (-) differs from the file: copy (+):\n${d.map((l) => `    ${l}`).join('\n')}\n    replay: ${replay(c)}`,
            );
        }
      }
      console.log(
        `# final trees compared for ${compared} cases (the ${differed.size} that differed are reported above); ${lowersBefore.size} lower-layer entries unchanged: ${written.length === 0}`,
      );
      if (problems.length) assert.fail(problems.slice(0, 20).join('\n'));
    });
  });
}
