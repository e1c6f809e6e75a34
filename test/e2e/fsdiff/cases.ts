/**
 * The generated case set of the differential suite: entry kinds (how an entry is laid out
 * over the layers of a stack), the `workspace.fs` operations, and the cases that combine them.
 *
 * A case lives in a directory of its own (`c042/`) under the stack's root, so that hundreds
 * of cases share a stack and still start from a state no other case touched: overlay
 * semantics are per directory (lookup, whiteouts, opaque markers, copy-up of the parents).
 * Cases on the root itself get a small stack each. Everything random comes from one seed.
 */
import { Rng } from '../../mocha/rng';

/** Where an entry is placed: the upper layer, or a lower one (0 = top-most lower). */
export type Layer = 'U' | 0 | 1;
export const LOWERS = 2;

export type Node =
  | { type: 'file'; data: string; mode?: number; immutable?: boolean }
  | { type: 'dir'; mode?: number; opaque?: boolean }
  | { type: 'link'; target: string }
  | { type: 'fifo' }
  | { type: 'whiteout' };

/** One entry of one layer; `path` is relative to the case's directory; parents are made as plain directories. */
export interface Placement {
  layer: Layer;
  path: string;
  node: Node;
}

/** A `workspace.fs` call (or a WorkspaceEdit), paths relative to the case's directory ('' is the directory itself). */
export type Op =
  | { op: 'stat' | 'readDirectory' | 'readFile' | 'createDirectory'; path: string }
  | { op: 'writeFile'; path: string; data: string }
  | { op: 'delete'; path: string; recursive?: boolean; useTrash?: boolean }
  | { op: 'rename' | 'copy'; from: string; to: string; overwrite: boolean }
  | { op: 'createFile'; path: string; data: string; overwrite: boolean; ignoreIfExists: boolean };

export type OpName = Op['op'];

export interface Case {
  /** `c042` (under its own directory of the shared stack) or `r07` (the root of a stack of its own). */
  id: string;
  /** The case's directory relative to the stack root ('' for a root case). */
  dir: string;
  /** What the operation is applied to: [source kind] or [source kind, target kind]. */
  kinds: string[];
  op: Op;
  layers: Placement[];
}

/** Names that need escaping in a URI (space, #, ?, %, [ ], non-ASCII, reserved characters). */
export const ESCAPED_NAMES = [
  'with space',
  'hash#tag',
  'q?mark',
  'per%cent',
  '%41literal',
  'brack[et]',
  'ünï cödé',
  'semi;colon,comma',
  'plus+and&eq=',
  'tilde~$dollar',
  "quote'single",
  'café ☕',
];

/** Builds one case's layers; names are unique within the case. */
export class Gen {
  readonly layers: Placement[] = [];
  private n = 0;

  constructor(readonly rng: Rng) {}

  /** A fresh name: plain, or (sometimes, or when asked) one that needs escaping in a URI. */
  name(stem: string, escaped = this.rng.chance(0.12)): string {
    this.n++;
    return escaped ? `${this.rng.pick(ESCAPED_NAMES)} ${this.n}` : `${stem}${this.n}`;
  }

  put(layer: Layer, path: string, node: Node): void {
    this.layers.push({ layer, path, node });
  }

  lower(): 0 | 1 {
    return this.rng.int(0, LOWERS - 1) as 0 | 1;
  }

  /** Some content: usually short text, sometimes empty, sometimes several KiB. */
  data(): string {
    const r = this.rng.next();
    return this.rng.text(r < 0.1 ? 0 : r < 0.85 ? this.rng.int(1, 200) : this.rng.int(2_000, 20_000));
  }

  file(mode?: number): Node {
    return mode === undefined ? { type: 'file', data: this.data() } : { type: 'file', data: this.data(), mode };
  }
}

/** Each kind lays out an entry over the layers and returns its path: what an operation is applied to. */
export const KINDS: Record<string, (g: Gen) => string> = {
  'file in a lower layer': (g) => {
    const p = g.name('f');
    g.put(g.lower(), p, g.file());
    return p;
  },
  'file shadowing a lower file': (g) => {
    const p = g.name('f');
    g.put(1, p, g.file());
    g.put(0, p, g.file());
    return p;
  },
  'file in the upper layer': (g) => {
    const p = g.name('f');
    g.put('U', p, g.file());
    return p;
  },
  'upper copy of a lower file': (g) => {
    const p = g.name('f');
    g.put(g.lower(), p, g.file());
    g.put('U', p, g.file());
    return p;
  },
  'read-only file (0444)': (g) => {
    const p = g.name('ro');
    g.put(g.lower(), p, g.file(0o444));
    return p;
  },
  // chattr +i: even root may not write, rename or delete it — how a permission refusal (and
  // the disk provider's "write locked" for a file without the owner's write bit) shows as root.
  'immutable read-only upper file (0444, chattr +i)': (g) => {
    const p = g.name('imm');
    g.put('U', p, { type: 'file', data: g.data(), mode: 0o444, immutable: true });
    return p;
  },
  'immutable upper file (0644, chattr +i)': (g) => {
    const p = g.name('imm');
    g.put('U', p, { type: 'file', data: g.data(), mode: 0o644, immutable: true });
    return p;
  },
  'unreadable file (000)': (g) => {
    const p = g.name('secret');
    g.put(g.lower(), p, g.file(0o000));
    return p;
  },
  'file with a name to escape': (g) => {
    const p = g.name('f', true);
    g.put(g.lower(), p, g.file());
    return p;
  },
  'directory merged from two lowers': (g) => {
    const p = g.name('d');
    g.put(1, `${p}/${g.name('a')}`, g.file());
    g.put(0, `${p}/${g.name('b')}`, g.file());
    return p;
  },
  'directory in the upper layer': (g) => {
    const p = g.name('d');
    g.put('U', `${p}/${g.name('x')}`, g.file());
    return p;
  },
  'directory merged from upper and lower': (g) => {
    const p = g.name('d');
    g.put(g.lower(), `${p}/${g.name('a')}`, g.file());
    g.put('U', `${p}/${g.name('b')}`, g.file());
    return p;
  },
  'empty lower directory': (g) => {
    const p = g.name('e');
    g.put(g.lower(), p, { type: 'dir' });
    return p;
  },
  'empty upper directory': (g) => {
    const p = g.name('e');
    g.put('U', p, { type: 'dir' });
    return p;
  },
  'opaque directory': (g) => {
    const p = g.name('o');
    g.put(1, `${p}/${g.name('hidden')}`, g.file());
    g.put(1, `${p}/${g.name('sub')}/${g.name('c')}`, g.file());
    g.put('U', p, { type: 'dir', opaque: true });
    g.put('U', `${p}/${g.name('b')}`, g.file());
    return p;
  },
  'upper directory over a lower file': (g) => {
    const p = g.name('d');
    g.put(g.lower(), p, g.file());
    g.put('U', `${p}/${g.name('x')}`, g.file());
    return p;
  },
  'upper file over a lower directory': (g) => {
    const p = g.name('f');
    g.put(g.lower(), `${p}/${g.name('a')}`, g.file());
    g.put('U', p, g.file());
    return p;
  },
  'unreadable directory (000)': (g) => {
    const p = g.name('locked');
    g.put(1, p, { type: 'dir', mode: 0o000 });
    g.put(1, `${p}/${g.name('a')}`, g.file());
    return p;
  },
  'directory with a name to escape': (g) => {
    const p = g.name('d', true);
    g.put(g.lower(), `${p}/${g.name('a', true)}`, g.file());
    return p;
  },
  'deep lower directory chain': (g) => {
    const p = g.name('deep');
    g.put(1, `${p}/${g.name('q')}/${g.name('r')}/${g.name('s')}`, g.file());
    return p;
  },
  'whited-out file': (g) => {
    const p = g.name('w');
    g.put(1, p, g.file());
    g.put('U', p, { type: 'whiteout' });
    return p;
  },
  'whited-out directory': (g) => {
    const p = g.name('w');
    g.put(0, `${p}/${g.name('a')}`, g.file());
    g.put('U', p, { type: 'whiteout' });
    return p;
  },
  'missing name': (g) => g.name('missing'),
  'missing name to escape': (g) => g.name('missing', true),
  'path through a file': (g) => {
    const f = g.name('f');
    g.put(g.lower(), f, g.file());
    return `${f}/${g.name('child')}`;
  },
  'missing parent': (g) => `${g.name('nodir')}/${g.name('child')}`,
  'name inside a whited-out directory': (g) => {
    const d = g.name('w');
    const a = g.name('a');
    g.put(1, `${d}/${a}`, g.file());
    g.put('U', d, { type: 'whiteout' });
    return `${d}/${a}`;
  },
  'symlink to a file': (g) => {
    const t = g.name('t');
    const p = g.name('l');
    g.put(g.lower(), t, g.file());
    g.put(g.lower(), p, { type: 'link', target: t });
    return p;
  },
  'symlink to a directory': (g) => {
    const t = g.name('td');
    const p = g.name('l');
    g.put(g.lower(), `${t}/${g.name('a')}`, g.file());
    g.put(g.lower(), p, { type: 'link', target: t });
    return p;
  },
  'dangling symlink': (g) => {
    const p = g.name('l');
    g.put(g.lower(), p, { type: 'link', target: g.name('nowhere') });
    return p;
  },
  'symlink loop': (g) => {
    const p = g.name('loop');
    g.put(g.lower(), p, { type: 'link', target: p });
    return p;
  },
  'symlink to a whited-out name': (g) => {
    const t = g.name('t');
    const p = g.name('l');
    g.put(1, t, g.file());
    g.put('U', t, { type: 'whiteout' });
    g.put(0, p, { type: 'link', target: t });
    return p;
  },
  'absolute symlink': (g) => {
    const p = g.name('abs');
    g.put(g.lower(), p, { type: 'link', target: '/etc/passwd' });
    return p;
  },
  'upper symlink to a lower file': (g) => {
    const t = g.name('t');
    const p = g.name('l');
    g.put(1, t, g.file());
    g.put('U', p, { type: 'link', target: t });
    return p;
  },
  'FIFO in a lower layer': (g) => {
    const p = g.name('fifo');
    g.put(g.lower(), p, { type: 'fifo' });
    return p;
  },
  'FIFO in the upper layer': (g) => {
    const p = g.name('fifo');
    g.put('U', p, { type: 'fifo' });
    return p;
  },
};

/** Targets of rename and copy: kinds above, and places relative to the source. */
const TARGET_KINDS = [
  'missing name',
  'missing name to escape',
  'whited-out file',
  'whited-out directory',
  'path through a file',
  'missing parent',
  'name inside a whited-out directory',
  'file in a lower layer',
  'file in the upper layer',
  'read-only file (0444)',
  'immutable read-only upper file (0444, chattr +i)',
  'empty lower directory',
  'empty upper directory',
  'directory merged from two lowers',
  'directory merged from upper and lower',
  'opaque directory',
  'symlink to a directory',
  'dangling symlink',
  'FIFO in a lower layer',
  'the source itself',
  'inside the source',
  'the directory holding the source',
];

function target(kind: string, g: Gen, from: string): string {
  if (kind === 'the source itself') return from;
  if (kind === 'inside the source') return `${from}/${g.name('inside')}`;
  if (kind === 'the directory holding the source') return '';
  return KINDS[kind](g);
}

type Unary = (p: string, g: Gen, i: number) => Op;
/** Operations on one path, each applied to every kind. */
const UNARY: Record<string, Unary> = {
  stat: (p) => ({ op: 'stat', path: p }),
  readDirectory: (p) => ({ op: 'readDirectory', path: p }),
  readFile: (p) => ({ op: 'readFile', path: p }),
  writeFile: (p, g) => ({ op: 'writeFile', path: p, data: g.data() }),
  createDirectory: (p) => ({ op: 'createDirectory', path: p }),
  delete: (p) => ({ op: 'delete', path: p }),
  'delete recursive': (p) => ({ op: 'delete', path: p, recursive: true }),
  'delete recursive, no trash': (p) => ({ op: 'delete', path: p, recursive: true, useTrash: false }),
  // The four flag combinations in turn over the kinds.
  createFile: (p, g, i) => ({ op: 'createFile', path: p, data: g.data(), overwrite: (i & 1) === 1, ignoreIfExists: (i & 2) === 2 }),
};

/** The stack of a root case: a little of everything at the top level. */
function rootLayers(g: Gen): void {
  g.put(1, 'a', g.file());
  g.put(1, 'gone', g.file());
  g.put('U', 'gone', { type: 'whiteout' });
  g.put(1, 'd/x', g.file());
  g.put(0, 'd/y', g.file());
  g.put(0, 'b', g.file());
  g.put('U', 'u', g.file());
}

const ROOT_OPS: Op[] = [
  { op: 'stat', path: '' },
  { op: 'readDirectory', path: '' },
  { op: 'readFile', path: '' },
  { op: 'writeFile', path: '', data: 'x' },
  { op: 'createDirectory', path: '' },
  { op: 'delete', path: '' },
  { op: 'delete', path: '', recursive: true },
  { op: 'delete', path: '', recursive: true, useTrash: false },
  { op: 'createFile', path: '', data: 'x', overwrite: true, ignoreIfExists: false },
  { op: 'rename', from: '', to: 'moved', overwrite: false },
  { op: 'rename', from: '', to: 'moved', overwrite: true },
  { op: 'rename', from: 'a', to: '', overwrite: false },
  { op: 'rename', from: 'a', to: '', overwrite: true },
  { op: 'copy', from: '', to: 'copied', overwrite: false },
  { op: 'copy', from: '', to: 'copied', overwrite: true },
  { op: 'copy', from: 'a', to: '', overwrite: false },
  { op: 'copy', from: 'a', to: '', overwrite: true },
];

export interface CaseSet {
  seed: number;
  /** Cases under their own directory of one shared stack. */
  shared: Case[];
  /** Cases on the root of a stack each. */
  root: Case[];
}

/**
 * The whole matrix: every unary operation on every kind; rename and copy, with and without
 * overwrite, with every kind as source (and a random target kind) and every target kind
 * (with a random source kind); every operation on the root.
 */
export function generate(seed: number): CaseSet {
  const rng = new Rng(seed);
  const shared: Case[] = [];
  const add = (kinds: string[], make: (g: Gen) => Op) => {
    const g = new Gen(rng);
    const op = make(g);
    const id = `c${String(shared.length + 1).padStart(3, '0')}`;
    shared.push({ id, dir: id, kinds, op, layers: g.layers });
  };
  const kinds = Object.keys(KINDS);
  for (const [, unary] of Object.entries(UNARY)) {
    kinds.forEach((kind, i) => add([kind], (g) => unary(KINDS[kind](g), g, i)));
  }
  for (const op of ['rename', 'copy'] as const) {
    for (const overwrite of [false, true]) {
      const pairs: [string, string][] = [
        ...kinds.map((k): [string, string] => [k, rng.pick(TARGET_KINDS)]),
        ...TARGET_KINDS.map((t): [string, string] => [rng.pick(kinds), t]),
      ];
      for (const [src, dst] of pairs) {
        add([src, dst], (g) => {
          const from = KINDS[src](g);
          return { op, from, to: target(dst, g, from), overwrite };
        });
      }
    }
  }
  const root = ROOT_OPS.map((op, i): Case => {
    const g = new Gen(rng);
    rootLayers(g);
    return { id: `r${String(i + 1).padStart(2, '0')}`, dir: '', kinds: ['the root'], op, layers: g.layers };
  });
  return { seed, shared, root };
}

/** Does the operation change anything when it succeeds? */
export function writes(op: Op): boolean {
  return !['stat', 'readDirectory', 'readFile'].includes(op.op);
}

/** One line: `rename(c042/f3 → c042/d5, overwrite)`. */
export function describeOp(c: Case): string {
  const at = (p: string) => (c.dir && p ? `${c.dir}/${p}` : c.dir || p || '/');
  const op = c.op;
  switch (op.op) {
    case 'rename':
    case 'copy':
      return `${op.op}(${at(op.from)} → ${at(op.to)}${op.overwrite ? ', overwrite' : ''})`;
    case 'delete':
      return `delete(${at(op.path)}${op.recursive ? ', recursive' : ''}${op.useTrash === false ? ', useTrash false' : ''})`;
    case 'writeFile':
      return `writeFile(${at(op.path)}, ${op.data.length} bytes)`;
    case 'createFile':
      return `WorkspaceEdit.createFile(${at(op.path)}, ${op.overwrite ? 'overwrite' : 'no overwrite'}, ${op.ignoreIfExists ? 'ignoreIfExists' : 'fail if exists'})`;
    default:
      return `${op.op}(${at(op.path)})`;
  }
}
