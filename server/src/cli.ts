/**
 * overlayws: the overlay engine from a terminal.
 *   overlayws STACK COMMAND [OPTIONS] ARGS...   (STACK: --lower ..., --workspace FILE --overlay NAME, ...)
 * Exit 0 on success, 1 on an operation error (one stderr line), 2 on a usage error.
 * The command line is cliArgs.ts, what each command does cliCommands.ts.
 */
import * as fs from 'node:fs';
import { Overlay, parseDockerInspect, parseDockerLayerDir, parseMountOptions, whiteoutFormatNames, type StackSpec } from './overlay';
import { importLayer } from './overlay/oci';
import { findLiveMount, liveRoute } from './liveMount';
import { type CommandLine, overlayUri, parseCommandLine, UsageError, WRITES } from './cliArgs';
import { runCommand } from './cliCommands';
import { engineWrites, liveWrites, type Writes } from './cliWrites';
import { warnStaleReaders } from './cliHolders';
import { readWorkspaceFile, workspaceStack } from './workspaceFile';
import { commitOverlay, containerImage } from './image/commitOverlay';
import { imageStack, type ImageStack } from './image/stack';

export const USAGE = `usage: overlayws STACK COMMAND [OPTIONS] ARGS
STACK:
  --lower DIR[:DIR...]   lower layers, top-most first (\\: escapes a colon)
  --upper DIR --work DIR writable upper layer and its work directory
  --whiteouts FORMAT     ${[...whiteoutFormatNames(), 'auto'].join(' | ')} (default auto)
  --userxattr            opaque markers in user.overlay.* (mount -o userxattr)
  --mount-opts STRING    lowerdir=a:b,upperdir=u,workdir=w
  --docker-layer DIR     a Docker overlay2 layer directory
  --spec FILE.json       a stack spec or docker inspect JSON
  --image REF            the layers of an image: a local Docker image name, a docker/podman
                         save archive (FILE.tar) or an OCI image layout directory; layers of
                         archives and layouts are unpacked once into the layer cache
                         ($XDG_CACHE_HOME/overlayws/layers); without --upper read-only
  --workspace FILE.code-workspace [--overlay NAME]
                         the stack NAME of that file's "overlay.overlays" setting;
                         paths may then be URIs as VS Code shows them: overlay://NAME/PATH
  Directories and files outside the overlay may be given as file: URIs.
COMMANDS (PATH: absolute from the overlay root, or overlay://NAME/PATH with --workspace):
  ls PATH | cat PATH | stat PATH | tree [PATH] | resolve PATH
  history PATH                    what each layer has at PATH, top to bottom, one JSON line each:
                                  {"layer":"upper"|N,"kind":"file"|"dir"|"symlink"|"whiteout"|"opaque",
                                   "size"?,"sha256"?,"target"?}
  diff [--json] [PATH]            changes as docker diff prints them (A, C, D); --json: one
                                  {"kind","path","type"?,"lowerLayer"?,"hiddenBy"?} per line
  write PATH | append PATH        (data from stdin; like cat > PATH, cat >> PATH)
  truncate [-c] PATH SIZE         (or -s SIZE PATH; creates a missing file unless -c;
                                   SIZE: [+-<>/%]N[K|M|G|T|P|E], KB = 1000)
  mkdir [-p] PATH | rm [-r] [-f] [-d] PATH | rmdir PATH
  mv [-T] [-f] [-n] SRC DST       (into DST when it is a directory, unless -T)
  ln -s [-f] [-T] [-n] TARGET PATH (inside PATH when it is a directory, unless -T)
  chmod MODE PATH                 (octal, or symbolic: u+x,go-w, a=rX, ...)
  export FILE.tar[.gz]            the upper layer as an OCI layer tarball (gzip by name)
  commit [--tag NAME:TAG] [--docker-archive FILE.tar] [--oci-layout DIR] [--load] [--message TEXT]
                                  the upper as a new layer on top of the image (--image, or the
                                  container's image with --spec docker inspect JSON); prints its id
  holders PATH                    processes that hold the lower copy of PATH open or mapped
                                  (a mounted stack: also the merged file through the mount):
                                  PID<TAB>open|mapped<TAB>COMMAND<TAB>CONTAINER per line
  write, append and truncate warn on stderr about such processes when they copy a file up.
  The write commands act as the coreutils of the same name on a kernel overlay mount.
overlayws [STACK] import-layer FILE.tar[.gz|.zst] DIR [--whiteouts ${whiteoutFormatNames().join('|')}] [--userxattr]
  unpack an OCI layer into DIR for use as a lower layer (no stack needed;
  with a STACK before it (the layers it goes on), that stack's whiteout format is
  used and parent dirs the tarball leaves out copy their metadata from it)`;

/** The stack the command line names (reads --spec and --workspace files). */
export function stackOf(cl: CommandLine): StackSpec {
  const o = cl.stack;
  const explicit: Partial<StackSpec> = {};
  if (o.lower) explicit.lower = o.lower;
  if (o.upper !== undefined) explicit.upper = o.upper;
  if (o.work !== undefined) explicit.work = o.work;
  if (o.whiteouts !== undefined) explicit.whiteouts = o.whiteouts;
  if (o.userxattr) explicit.userxattr = true;
  let spec: StackSpec | undefined;
  const sources = [o.mountOpts, o.dockerLayer, o.spec, o.workspace].filter((s) => s !== undefined).length;
  if (sources > 1) throw new UsageError('--mount-opts, --docker-layer, --spec and --workspace each name a whole stack: give one');
  if (o.image !== undefined && (sources > 0 || o.lower || o.whiteouts !== undefined || o.userxattr))
    throw new UsageError('--image names the lower layers and their format: add only --upper and --work');
  if (o.mountOpts !== undefined) spec = parseMountOptions(o.mountOpts);
  if (o.dockerLayer !== undefined) spec = parseDockerLayerDir(o.dockerLayer);
  if (o.spec !== undefined) {
    const json = JSON.parse(fs.readFileSync(o.spec, 'utf8')) as unknown;
    spec = Array.isArray(json) || (json as { GraphDriver?: unknown }).GraphDriver ? parseDockerInspect(json as object) : (json as StackSpec);
  }
  if (o.workspace !== undefined) {
    if (Object.keys(explicit).length > 0)
      throw new UsageError('--workspace names the whole stack: leave out --lower, --upper, --work, --whiteouts, --userxattr');
    const ws = readWorkspaceFile(o.workspace);
    const names = Object.keys(ws.raw);
    const list = names.length ? `it defines ${names.map((n) => JSON.stringify(n)).join(', ')}` : 'it defines none';
    let name = cl.overlayName;
    if (name === undefined) {
      if (names.length !== 1) throw new UsageError(`name the overlay of ${o.workspace}: overlay://NAME/PATH or --overlay NAME (${list})`);
      name = names[0];
    }
    spec = workspaceStack(ws, name);
    if (!spec) throw new UsageError(`${o.workspace} has no overlay ${JSON.stringify(name)} in "overlay.overlays" (${list})`);
  }
  spec = { ...(spec ?? { lower: [] }), ...explicit } as StackSpec;
  if (cl.command === 'import-layer') return spec;
  if (o.image !== undefined) {
    if ((spec.upper === undefined) !== (spec.work === undefined)) throw new UsageError('--upper and --work go together');
    return spec;
  }
  if (!spec.lower || spec.lower.length === 0) throw new UsageError('no lower layers (--lower, --mount-opts, --docker-layer, --spec or --workspace)');
  if ((spec.upper === undefined) !== (spec.work === undefined)) throw new UsageError('--upper and --work go together');
  return spec;
}

/** The stack of --image, or of the other stack options. */
async function stackFor(cl: CommandLine): Promise<{ spec: StackSpec; image?: ImageStack }> {
  const spec = stackOf(cl);
  if (cl.stack.image === undefined) return { spec };
  const image = await imageStack(cl.stack.image, { upper: spec.upper, work: spec.work });
  return { spec: image.spec, image };
}

/** `commit`: the upper on top of --image's image, or of the container's image (--spec with docker inspect JSON); prints the new image's id. */
async function runCommit(ov: Overlay, cl: CommandLine, image: ImageStack | undefined): Promise<void> {
  let info = image?.info;
  if (!info && cl.stack.spec !== undefined) info = containerImage(JSON.parse(fs.readFileSync(cl.stack.spec, 'utf8')));
  if (!info) throw new UsageError('commit needs the image to commit on: --image REF, or --spec with the docker inspect JSON of a container');
  const o = cl.options;
  const r = await commitOverlay(ov, info, {
    tag: o.tag as string | undefined,
    dockerArchive: o['docker-archive'] as string | undefined,
    ociLayout: o['oci-layout'] as string | undefined,
    load: !!o.load,
    comment: o.message as string | undefined,
  });
  process.stdout.write(r.id + '\n');
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** `import-layer FILE DIR [--whiteouts FORMAT] [--userxattr]` (tar, gzip or zstd); a stack given before it lends its format. */
async function runImportLayer(spec: StackSpec, cl: CommandLine): Promise<void> {
  const whiteouts = (cl.options.whiteouts as string | undefined) ?? spec.whiteouts;
  let userxattr = !!cl.options.userxattr || (spec.userxattr ?? false);
  // A stack given before the command is the one the layer goes on: its format, and the
  // metadata for parent directories the tarball leaves out.
  const ov = (spec.lower?.length ?? 0) > 0 ? await Overlay.open(spec) : undefined;
  try {
    const fromStack = whiteouts === undefined || whiteouts === 'auto';
    const format = fromStack ? (ov?.stack.whiteouts ?? whiteoutFormatNames()[0]) : whiteouts;
    if (fromStack) userxattr = ov?.stack.userxattr ?? userxattr;
    await importLayer(cl.operands[0], cl.operands[1], { whiteouts: format, userxattr }, { parentsFrom: ov });
  } finally {
    await ov?.close();
  }
}

/** The one stderr line of a failed operation; paths as overlay:// URIs when the command was given URIs. */
function errorLine(err: unknown, cl: CommandLine | undefined): string {
  const e = err as { code?: string; description?: string; message?: string; path?: string };
  const desc = e.description ?? e.message ?? String(err);
  let where = e.path;
  if (where !== undefined && cl?.usesUris && cl.overlayName !== undefined && where.startsWith('/')) where = overlayUri(cl.overlayName, where);
  return `overlayws: ${e.code ?? 'EIO'}: ${desc}${where !== undefined ? `, '${where}'` : ''}\n`;
}

export async function main(argv: string[]): Promise<number> {
  let ov: Overlay | undefined;
  let cl: CommandLine | undefined;
  try {
    cl = parseCommandLine(argv);
    if (cl.help) {
      process.stdout.write(USAGE + '\n');
      return 0;
    }
    const { spec, image } = await stackFor(cl);
    if (cl.command === 'import-layer') {
      await runImportLayer(spec, cl);
      return 0;
    }
    // An upper that a mounted overlay uses is written through that mount (as the server does):
    // the kernel or fuse-overlayfs makes the copy-ups, nothing changes behind its back.
    const live = spec.upper ? findLiveMount(spec.upper) : undefined;
    ov = await Overlay.open(live?.reachable && !spec.merged ? { ...spec, merged: live.merged } : spec);
    let writes: Writes = engineWrites(ov);
    if (WRITES.has(cl.command)) {
      const { writer } = liveRoute(ov, cl.command);
      if (writer) writes = liveWrites(ov, writer);
    }
    if (cl.command === 'commit') {
      await runCommit(ov, cl, image);
      return 0;
    }
    const stderrLine = (line: string): void => void process.stderr.write(line + '\n');
    const shown = cl;
    const name = (p: string): string => (shown.usesUris && shown.overlayName !== undefined ? overlayUri(shown.overlayName, p) : p);
    writes = warnStaleReaders(ov, writes, ov.stack.merged, stderrLine, name);
    await runCommand(ov, writes, cl.command, cl.operands, cl.options, (s) => process.stdout.write(s), readStdin, { merged: ov.stack.merged, note: stderrLine });
    return 0;
  } catch (err) {
    if (err instanceof UsageError) {
      if (argv.length === 0) process.stderr.write(USAGE + '\n');
      else process.stderr.write(`overlayws: ${err.message}\nTry 'overlayws --help' for more information.\n`);
      return 2;
    }
    process.stderr.write(errorLine(err, cl));
    return 1;
  } finally {
    await ov?.close();
  }
}

if (require.main === module) {
  void main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
