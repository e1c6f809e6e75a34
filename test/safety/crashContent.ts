/** Self-describing write contents for the crash test: a header, then bytes derived from the tag. */
import { createHash } from 'node:crypto';
export { prng } from './helpers';

export function contentFor(p: string, tag: string, size: number): Buffer {
  const head = Buffer.from(`OVLWS ${p} ${tag} ${size}\n`);
  const body = Buffer.alloc(Math.max(0, size - head.length));
  const seed = createHash('sha256')
    .update(p + ' ' + tag)
    .digest();
  for (let i = 0; i < body.length; i += seed.length) seed.copy(body, i);
  return Buffer.concat([head, body]).subarray(0, Math.max(size, head.length));
}

/** The tag of a complete, untorn write content, or undefined. */
export function parseContent(p: string, data: Buffer): string | undefined {
  const nl = data.indexOf(10);
  if (nl < 0 || nl > 512) return undefined;
  const m = /^OVLWS (.+) (\S+) (\d+)$/.exec(data.subarray(0, nl).toString());
  if (!m || m[1] !== p) return undefined;
  const want = contentFor(p, m[2], Number(m[3]));
  return want.equals(data) ? m[2] : undefined;
}
