/**
 * Why the OCI layer code reads and writes tar itself (server/src/overlay/oci/tarHeader.ts)
 * instead of using a streaming tar library: what OCI layers carry and the libraries lose,
 * shown on one archive. Names are bytes (container layers have names that are not UTF-8, long
 * ones in PAX `path` records) and xattr values are bytes (SCHILY.xattr.security.capability
 * of `setcap cap_setuid=ep`, as Debian's newuidmap has, holds 0x80). Should a library learn
 * to keep them, these tests fail: then it can replace the codec.
 *   tar-stream 3.2 (tar-fs is built on it): filenameEncoding 'latin1' keeps ustar names, but
 *     PAX records are always decoded as UTF-8 strings, and its packer writes only strings.
 *   tar (node-tar) 7.5: PAX records other than its known fields (SCHILY.xattr.* among them) are
 *     dropped, values cut at the first NUL, and a record that is not UTF-8 fails its length
 *     check and is dropped whole (a long name is left cut to 100 bytes).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { describe, it } from 'mocha';
import { Parser, type ReadEntry } from 'tar';
import { decodeName, nameBytes } from '../../server/src/overlay';
import { readTar, TarWriter } from '../../server/src/overlay/oci';

interface TarStreamHeader {
  name: string;
  linkname?: string | null;
  pax?: Record<string, string> | null;
}
interface TarStream {
  extract(opts: { filenameEncoding?: string }): NodeJS.WritableStream & {
    on(ev: 'entry', fn: (h: TarStreamHeader, stream: NodeJS.ReadableStream, next: () => void) => void): void;
    on(ev: 'finish' | 'error', fn: (err?: Error) => void): void;
  };
  pack(): NodeJS.ReadableStream & {
    entry(h: { name: string; size?: number; pax?: Record<string, string> }, data?: string): void;
    finalize(): void;
  };
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const tarStream = require('tar-stream') as TarStream;

/** security.capability of `setcap cap_setuid=ep` (VFS_CAP_REVISION_2, effective; permitted bit 7). */
const CAP_SETUID = Buffer.from([0x01, 0x00, 0x00, 0x02, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
/** A short name with a Latin-1 byte (ustar field) and a long one (PAX path record). */
const SHORT = decodeName(Buffer.from([0x63, 0x61, 0x66, 0xe9])); // "caf\xe9"
const LONG = 'dir/' + 'x'.repeat(120) + decodeName(Buffer.from([0xff]));

/** An archive as our writer makes it: the two names, the second with the capability. */
async function archive(): Promise<Buffer> {
  const parts: Buffer[] = [];
  const out = new Writable({
    write(c: Buffer, _e, done) {
      parts.push(c);
      done();
    },
  });
  const w = new TarWriter(out, { gzip: false });
  for (const [name, xattrs] of [
    [SHORT, []],
    [LONG, [['security.capability', CAP_SETUID]]],
  ] as [string, [string, Buffer][]][]) {
    await w.file(
      { name, mode: 0o755, uid: 0, gid: 0, size: 1, mtime: 0, type: '0', xattrs },
      (async function* () {
        yield Buffer.from('x');
      })(),
    );
  }
  await w.end();
  return Buffer.concat(parts);
}

/** Bytes of a latin1 string (what filenameEncoding 'latin1' gives back). */
const latin1 = (s: string): Buffer => Buffer.from(s, 'latin1');

describe('tar libraries and OCI layers: what each loses (why overlay/oci/ reads and writes tar itself)', () => {
  it('our reader: both names and the binary xattr come back byte for byte', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ovlws-tarlib-'));
    try {
      const file = path.join(dir, 'a.tar');
      fs.writeFileSync(file, await archive());
      const entries = await readTar(file);
      assert.deepEqual(
        entries.map((e) => nameBytes(e.name).toString('hex')),
        [nameBytes(SHORT).toString('hex'), nameBytes(LONG).toString('hex')],
      );
      assert.ok(entries[1].xattrs[0][1].equals(CAP_SETUID));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("tar-stream with filenameEncoding 'latin1': the ustar name is kept, the PAX path and the xattr value are not", async () => {
    const raw = await archive();
    const headers: TarStreamHeader[] = [];
    await new Promise<void>((resolve, reject) => {
      const x = tarStream.extract({ filenameEncoding: 'latin1' });
      x.on('entry', (h, stream, next) => {
        headers.push(h);
        stream.on('end', next);
        stream.resume();
      });
      x.on('finish', () => resolve());
      x.on('error', (err) => reject(err));
      x.end(raw);
    });
    assert.ok(latin1(headers[0].name).equals(nameBytes(SHORT)), 'the option keeps ustar name bytes');
    assert.ok(!Buffer.from(headers[1].name).equals(nameBytes(LONG)), 'the PAX path is decoded as UTF-8');
    assert.ok(headers[1].name.includes('\uFFFD'), 'its stray byte became U+FFFD');
    const cap = headers[1].pax?.['SCHILY.xattr.security.capability'];
    assert.equal(typeof cap, 'string', 'PAX values are strings');
    assert.ok(!Buffer.from(cap as string).equals(CAP_SETUID) && !latin1(cap as string).equals(CAP_SETUID), 'the capability bytes are lost');
  });

  it('tar-stream pack: a name or PAX value can only be given as a string, written as UTF-8', async () => {
    const p = tarStream.pack();
    p.entry({ name: nameBytes(SHORT).toString('latin1'), size: 0, pax: { 'SCHILY.xattr.security.capability': CAP_SETUID.toString('latin1') } }, '');
    p.finalize();
    const chunks: Buffer[] = [];
    for await (const c of p as AsyncIterable<Buffer>) chunks.push(Buffer.from(c));
    const raw = Buffer.concat(chunks);
    assert.ok(raw.includes(Buffer.from([0x63, 0x61, 0x66, 0xc3, 0xa9])), '0xe9 written as UTF-8 c3 a9');
    assert.ok(!raw.includes(CAP_SETUID), 'the capability bytes are not in the archive');
  });

  it('tar (node-tar): SCHILY.xattr records are dropped, and so is a PAX path that is not UTF-8', async () => {
    const raw = await archive();
    const entries: ReadEntry[] = [];
    await new Promise<void>((resolve, reject) => {
      const p = new Parser({
        onReadEntry: (e) => {
          entries.push(e);
          e.resume();
        },
      });
      p.on('end', () => resolve());
      p.on('error', (err: Error) => reject(err));
      p.end(raw);
    });
    assert.equal(entries.length, 2);
    // Its record-length check counts the bytes of the UTF-8-decoded record: the 0xff became
    // U+FFFD (3 bytes), so the whole PAX path record is dropped and the 100-byte ustar field is left.
    assert.equal(entries[1].extended?.path, undefined, 'the PAX path record is dropped');
    assert.equal(entries[1].path, LONG.slice(0, 100), 'the name is cut to the ustar field');
    const ext = entries[1].extended as unknown as Record<string, unknown>;
    assert.ok(!Object.keys(ext).some((k) => k.includes('xattr') || k.includes('capability')), 'no xattr survives');
    assert.ok(!JSON.stringify(ext).includes(CAP_SETUID.toString('latin1')), 'nor its value');
  });
});
