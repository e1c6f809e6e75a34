/** Layer tarballs for the import figures and tests: a few big files and many small ones, written by the engine's streaming writer. */
import * as fs from 'node:fs';
import { TarWriter } from '../../server/src/overlay/oci';

/**
 * A layer of `big` files of `bigMiB` MiB (zeros: the content does not matter to memory or
 * to the tar code) and `small` small files, 500 to a directory; gzip'd when asked.
 * Entries: 1 + big + ceil(small / 500) + small.
 */
export async function makeLayer(file: string, big: number, bigMiB: number, small: number, gzip: boolean): Promise<void> {
  const w = new TarWriter(fs.createWriteStream(file), { gzip });
  const chunk = Buffer.alloc(1 << 20);
  async function* zeros(mib: number): AsyncGenerator<Buffer> {
    for (let i = 0; i < mib; i++) yield chunk;
  }
  async function* one(data: Buffer): AsyncGenerator<Buffer> {
    yield data;
  }
  const h = { mode: 0o644, uid: 0, gid: 0, mtime: 1_700_000_000, type: '0' };
  await w.header({ ...h, name: 'big/', type: '5', mode: 0o755, size: 0 });
  for (let i = 0; i < big; i++) await w.file({ ...h, name: `big/f${i}`, size: bigMiB * 2 ** 20 }, zeros(bigMiB));
  for (let d = 0; d * 500 < small; d++) {
    await w.header({ ...h, name: `small/${d}/`, type: '5', mode: 0o755, size: 0 });
    for (let i = d * 500; i < Math.min(small, (d + 1) * 500); i++) {
      const data = Buffer.from(`file ${i}\n`);
      await w.file({ ...h, name: `small/${d}/f${i}`, size: data.length }, one(data));
    }
  }
  await w.end();
}
