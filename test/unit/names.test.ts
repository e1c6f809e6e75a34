/** names.ts: the reversible escape of byte names that are not valid UTF-8. */
import assert from 'node:assert/strict';
import { describe, test } from 'mocha';
import { compareNames, decodeName, encodePath, hasEscapes, nameBytes } from '../../server/src/overlay/names';

/** mulberry32, seeded: failures replay. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    let t = (s = (s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Random bytes, biased towards what trips decoders: lead bytes, continuations, EF 9E/9F xx, valid sequences. */
function randomName(next: () => number): Buffer {
  const parts: number[] = [];
  const n = Math.floor(next() * 12);
  const byte = (lo: number, hi: number): number => lo + Math.floor(next() * (hi - lo + 1));
  for (let i = 0; i < n; i++) {
    const r = next();
    if (r < 0.25) parts.push(byte(0x20, 0x7e));
    else if (r < 0.45) parts.push(byte(0x80, 0xff));
    else if (r < 0.55)
      parts.push(0xef, byte(0x9e, 0x9f), byte(0x80, 0xbf)); // U+F780..U+F7FF as UTF-8
    else if (r < 0.65) parts.push(0xef, byte(0x80, 0xbf), byte(0x80, 0xbf));
    else if (r < 0.75) {
      const cp = byte(0x80, 0x10ffff - 0x800);
      parts.push(...Buffer.from(String.fromCodePoint(cp < 0xd800 ? cp : cp + 0x800)));
    } else if (r < 0.85)
      parts.push(byte(0xc0, 0xf7), byte(0x80, 0xbf)); // often truncated or overlong
    else parts.push(0xed, byte(0x80, 0xbf), byte(0x80, 0xbf)); // surrogates half the time
  }
  return Buffer.from(parts);
}

describe('byte names (names.ts)', () => {
  test('random byte strings round-trip, decode one-to-one and to well-formed Unicode', () => {
    const next = rng(0x5eed);
    const seen = new Map<string, string>();
    for (let i = 0; i < 20000; i++) {
      const b = randomName(next);
      const s = decodeName(b);
      assert.ok(nameBytes(s).equals(b), `round trip of ${b.toString('hex')}: ${JSON.stringify(s)}`);
      assert.ok(Buffer.from(encodePath(s)).equals(b));
      encodeURIComponent(s); // throws URIError on a lone surrogate
      const hex = b.toString('hex');
      const other = seen.get(s);
      assert.ok(other === undefined || other === hex, `${hex} and ${other} both decode to ${JSON.stringify(s)}`);
      seen.set(s, hex);
    }
  });

  test('valid UTF-8 names are unchanged, and encodePath gives back the very string', () => {
    for (const s of ['plain.txt', 'é', '日本語', '😀 emoji', '\uFFFD', 'a\uF77Fb', '\uF800', '\uE000', '\uF8FF', 'new\nline', '']) {
      assert.equal(decodeName(Buffer.from(s)), s);
      assert.equal(encodePath(s), s);
      assert.equal(hasEscapes(s), false);
    }
  });

  test('stray bytes escape to U+F780–U+F7FF; a literal U+F780 name is escaped too and round-trips', () => {
    assert.equal(decodeName(Buffer.from([0x66, 0xff, 0x6f])), 'f\uF7FFo');
    assert.equal(decodeName(Buffer.from([0x66, 0xfe, 0x6f])), 'f\uF7FEo');
    assert.equal(decodeName(Buffer.from([0xc0, 0x80])), '\uF7C0\uF780', 'overlong NUL');
    assert.equal(decodeName(Buffer.from([0xed, 0xa0, 0x80])), '\uF7ED\uF7A0\uF780', 'UTF-16 surrogate');
    assert.equal(decodeName(Buffer.from([0xf4, 0x90, 0x80, 0x80])), '\uF7F4\uF790\uF780\uF780', 'above U+10FFFF');
    assert.equal(decodeName(Buffer.from([0x61, 0xe2, 0x82])), 'a\uF7E2\uF782', 'truncated at the end');
    assert.equal(decodeName(Buffer.from([0xe2, 0x82, 0x2f, 0xac])), '\uF7E2\uF782/\uF7AC', "'/' never joins a sequence");
    const literal = Buffer.from('\uF780');
    assert.deepEqual([...literal], [0xef, 0x9e, 0x80]);
    assert.equal(decodeName(literal), '\uF7EF\uF79E\uF780');
    assert.ok(nameBytes(decodeName(literal)).equals(literal));
    assert.ok(Buffer.isBuffer(encodePath('/l0/f\uF7FFo')));
    assert.ok((encodePath('/l0/f\uF7FFo') as Buffer).equals(Buffer.concat([Buffer.from('/l0/f'), Buffer.of(0xff), Buffer.from('o')])));
  });

  test('compareNames is the byte order of the names on disk', () => {
    const names = [Buffer.of(0x61), Buffer.of(0xff), Buffer.of(0x80), Buffer.from('é'), Buffer.from('\uF780'), Buffer.from('z'), Buffer.of(0x61, 0xfe)];
    const byBytes = names.slice().sort(Buffer.compare).map(decodeName);
    const byName = names.map(decodeName).sort(compareNames);
    assert.deepEqual(byName, byBytes);
  });
});
