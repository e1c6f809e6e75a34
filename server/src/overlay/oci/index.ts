/**
 * OCI layers: a layer directory written as a layer tarball (exportLayer.ts), a layer blob
 * unpacked as a lower layer (importLayer.ts), through a streaming tar reader and writer of
 * our own (tarHeader.ts says why) and gzip/zstd streams (compression.ts).
 */
import { layerBytes, type LayerSource } from './compression';
import { readTarEntries, type TarEntryInfo } from './tarReader';

export { layerBytes, type Compression, type LayerSource } from './compression';
export { exportLayer, exportLayerDir, writeLayer, type ExportOptions, type ExportResult, type LayerFormat } from './exportLayer';
export { importLayer, type ImportOptions, type ImportResult } from './importLayer';
export { readTarEntries, type TarEntry, type TarEntryInfo } from './tarReader';
export { TarWriter, type TarDigests } from './tarWriter';
export type { TarHeader } from './tarHeader';

/** Every entry of a layer blob with its data in memory: for small archives (tests, listings). */
export async function readTar(source: LayerSource): Promise<(TarEntryInfo & { data: Buffer })[]> {
  const out: (TarEntryInfo & { data: Buffer })[] = [];
  for await (const e of readTarEntries((await layerBytes(source)).bytes)) {
    const parts: Buffer[] = [];
    for await (const c of e.body()) parts.push(Buffer.from(c));
    const { body: _body, ...info } = e;
    void _body;
    out.push({ ...info, data: Buffer.concat(parts) });
  }
  return out;
}
