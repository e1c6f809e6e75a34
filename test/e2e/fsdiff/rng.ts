/**
 * Seeded PRNG (mulberry32), so that a generated case set is replayed from its seed. The same
 * generator as test/kernel/prng.ts; the e2e project cannot import from the test project.
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

  /** Text of `n` bytes (ASCII words and newlines). */
  text(n: number): string {
    let s = '';
    while (s.length < n) s += this.int(0, 7) === 0 ? '\n' : String.fromCharCode(97 + this.int(0, 25));
    return s;
  }
}
