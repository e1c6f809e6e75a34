/**
 * Seeded PRNG (mulberry32), so that a generated sequence or case set is replayed from its seed:
 * the kernel differential tests and the e2e fsdiff suite share it.
 */

export class Rng {
  private state: number;

  constructor(readonly seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform float in [0, 1). */
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Integer in [lo, hi] (inclusive). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('Rng.pick: empty list');
    return items[Math.floor(this.next() * items.length)];
  }

  /** Pick a key of `weights` with probability proportional to its weight. */
  weighted<K extends string>(weights: Record<K, number>): K {
    const keys = Object.keys(weights) as K[];
    const total = keys.reduce((s, k) => s + weights[k], 0);
    let r = this.next() * total;
    for (const k of keys) {
      r -= weights[k];
      if (r < 0) return k;
    }
    return keys[keys.length - 1];
  }

  /** Text of `n` bytes (ASCII words and newlines). */
  text(n: number): string {
    let s = '';
    while (s.length < n) s += this.int(0, 7) === 0 ? '\n' : String.fromCharCode(97 + this.int(0, 25));
    return s;
  }

  /** A short lowercase word, used for file contents. */
  word(): string {
    const letters = 'abcdefghijklmnopqrstuvwxyz';
    let s = '';
    const n = this.int(1, 8);
    for (let i = 0; i < n; i++) s += letters[this.int(0, letters.length - 1)];
    return s;
  }
}

/** Seed of the i-th sequence of a run that started from `base` (golden-ratio stride). */
export function sequenceSeed(base: number, i: number): number {
  return (base + Math.imul(i, 0x9e3779b9)) >>> 0;
}
