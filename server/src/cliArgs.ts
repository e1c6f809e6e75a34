/**
 * overlayws's command line: the stack options before the command, each command's own
 * coreutils-style options after it (both with node:util parseArgs), and the operands, where
 * `overlay://NAME/PATH` URIs become overlay paths and `file:` URIs real paths (vscode-uri).
 */
import { parseArgs as parseNodeArgs, type ParseArgsConfig } from 'node:util';
import { URI } from 'vscode-uri';
import { listChoices, whiteoutFormatNames } from './overlay';

export class UsageError extends Error {}

type Options = NonNullable<ParseArgsConfig['options']>;
type Values = Record<string, string | boolean | string[] | undefined>;

/** The stack and how to name it: every option that goes before the command. */
const STACK_OPTIONS = {
  lower: { type: 'string', multiple: true },
  upper: { type: 'string' },
  work: { type: 'string' },
  whiteouts: { type: 'string' },
  userxattr: { type: 'boolean' },
  'mount-opts': { type: 'string' },
  'docker-layer': { type: 'string' },
  spec: { type: 'string' },
  image: { type: 'string' },
  workspace: { type: 'string' },
  overlay: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies Options;

/**
 * What an operand is: a path inside the overlay, a symlink's target text (an overlay URI there
 * becomes the overlay path it names), a real path outside it, or plain text (a size, a mode).
 */
export type OperandKind = 'path' | 'target' | 'real' | 'text';

interface CommandSpec {
  usage: string;
  options?: Options;
  /** The kinds of the operands, given the options; `optional` of them may be left out at the end. */
  operands(values: Values): { kinds: OperandKind[]; optional?: number };
}

const HELP = { help: { type: 'boolean', short: 'h' } } as const satisfies Options;
const onePath = (): { kinds: OperandKind[] } => ({ kinds: ['path'] });

export const COMMANDS: Record<string, CommandSpec> = {
  ls: { usage: 'ls PATH', operands: onePath },
  cat: { usage: 'cat PATH', operands: onePath },
  stat: { usage: 'stat PATH', operands: onePath },
  tree: { usage: 'tree [PATH]', operands: () => ({ kinds: ['path'], optional: 1 }) },
  resolve: { usage: 'resolve PATH', operands: onePath },
  history: { usage: 'history PATH', operands: onePath },
  diff: { usage: 'diff [--json] [PATH]', options: { json: { type: 'boolean' } }, operands: () => ({ kinds: ['path'], optional: 1 }) },
  write: { usage: 'write PATH', operands: onePath },
  append: { usage: 'append PATH', operands: onePath },
  truncate: {
    usage: 'truncate [-c] PATH SIZE | truncate [-c] -s SIZE PATH',
    options: { 'no-create': { type: 'boolean', short: 'c' }, size: { type: 'string', short: 's' } },
    operands: (v) => ({ kinds: v.size === undefined ? ['path', 'text'] : ['path'] }),
  },
  mkdir: { usage: 'mkdir [-p] PATH', options: { parents: { type: 'boolean', short: 'p' } }, operands: onePath },
  rm: {
    usage: 'rm [-r] [-f] [-d] PATH',
    options: {
      recursive: { type: 'boolean', short: 'r' },
      R: { type: 'boolean', short: 'R' },
      force: { type: 'boolean', short: 'f' },
      dir: { type: 'boolean', short: 'd' },
    },
    operands: onePath,
  },
  rmdir: { usage: 'rmdir PATH', operands: onePath },
  mv: {
    usage: 'mv [-T] [-f] [-n] SRC DST',
    options: {
      'no-target-directory': { type: 'boolean', short: 'T' },
      force: { type: 'boolean', short: 'f' },
      'no-clobber': { type: 'boolean', short: 'n' },
    },
    operands: () => ({ kinds: ['path', 'path'] }),
  },
  ln: {
    usage: 'ln -s [-f] [-T] [-n] TARGET PATH',
    options: {
      symbolic: { type: 'boolean', short: 's' },
      force: { type: 'boolean', short: 'f' },
      'no-target-directory': { type: 'boolean', short: 'T' },
      'no-dereference': { type: 'boolean', short: 'n' },
    },
    operands: () => ({ kinds: ['target', 'path'] }),
  },
  chmod: { usage: 'chmod MODE PATH', operands: () => ({ kinds: ['text', 'path'] }) },
  export: { usage: 'export FILE.tar[.gz]', operands: () => ({ kinds: ['real'] }) },
  commit: {
    usage: 'commit [--tag NAME:TAG] [--docker-archive FILE.tar] [--oci-layout DIR] [--load] [--message TEXT]',
    options: {
      tag: { type: 'string' },
      'docker-archive': { type: 'string' },
      'oci-layout': { type: 'string' },
      load: { type: 'boolean' },
      message: { type: 'string' },
    },
    operands: () => ({ kinds: [] }),
  },
  holders: { usage: 'holders PATH', operands: onePath },
  'import-layer': {
    usage: `import-layer FILE.tar[.gz|.zst] DIR [--whiteouts ${whiteoutFormatNames().join('|')}] [--userxattr]`,
    options: { whiteouts: { type: 'string' }, userxattr: { type: 'boolean' } },
    operands: () => ({ kinds: ['real', 'real'] }),
  },
};

/** Commands that change the overlay. */
export const WRITES = new Set(['write', 'append', 'truncate', 'mkdir', 'rm', 'rmdir', 'mv', 'ln', 'chmod']);

export interface StackOptions {
  lower?: string[];
  upper?: string;
  work?: string;
  whiteouts?: string;
  userxattr?: boolean;
  mountOpts?: string;
  dockerLayer?: string;
  spec?: string;
  /** An image: a Docker image name, a docker/podman save archive, an OCI image layout directory. */
  image?: string;
  workspace?: string;
}

export interface CommandLine {
  /** `--help` (before or after the command): print the usage, exit 0. */
  help: boolean;
  stack: StackOptions;
  command: string;
  options: Values;
  /** Operands with URIs turned into overlay paths or real paths. */
  operands: string[];
  /** The overlay named by overlay:// operands or --overlay (needs --workspace). */
  overlayName?: string;
  /** Some operand was an overlay:// URI: errors name paths the same way. */
  usesUris: boolean;
}

const OVERLAY_SCHEME = 'overlay';

const hasScheme = (s: string, scheme: string): boolean => s.length > scheme.length && s.slice(0, scheme.length + 1).toLowerCase() === scheme + ':';

/** A real path: a plain path as is, a `file:` URI as the path it names. */
export function realPath(arg: string, what: string): string {
  if (hasScheme(arg, 'file')) {
    const uri = URI.parse(arg);
    if (uri.authority !== '' && uri.authority !== 'localhost') throw new UsageError(`${what}: ${arg} is on another host (${uri.authority})`);
    // uri.path, not uri.fsPath: fsPath reads '/c:x' as a Windows drive letter ('c:x') on every
    // platform, and the layers of an overlay are Linux paths.
    return uri.path;
  }
  if (hasScheme(arg, OVERLAY_SCHEME)) throw new UsageError(`${what} is a real path (a plain path or a file: URI), not an overlay URI: ${arg}`);
  return arg;
}

/** `overlay://NAME/PATH` → { name, path }; undefined for anything that is not an overlay URI. */
export function parseOverlayUri(arg: string): { name: string; path: string } | undefined {
  if (!hasScheme(arg, OVERLAY_SCHEME)) return undefined;
  const uri = URI.parse(arg);
  if (uri.authority === '') throw new UsageError(`${arg}: an overlay URI names its overlay: overlay://NAME/PATH`);
  if (uri.query !== '' || uri.fragment !== '') throw new UsageError(`${arg}: an overlay URI has no ?query or #fragment (write ? as %3F and # as %23 in names)`);
  return { name: uri.authority, path: uri.path === '' ? '/' : uri.path };
}

/** The URI of overlay path `p` of overlay `name`, as VS Code shows it. */
export function overlayUri(name: string, p: string): string {
  return URI.from({ scheme: OVERLAY_SCHEME, authority: name, path: p.startsWith('/') ? p : '/' + p }).toString();
}

/** `--lower a:b:c` (`\:` escapes a colon; a `file:` URI keeps its own colon). */
export function splitLower(value: string): string[] {
  const parts: string[] = [];
  let cur = '';
  for (let i = 0; i < value.length; i++) {
    if (value[i] === '\\' && value[i + 1] === ':') {
      cur += ':';
      i++;
    } else if (value[i] === ':') {
      parts.push(cur);
      cur = '';
    } else cur += value[i];
  }
  parts.push(cur);
  const out: string[] = [];
  for (let i = 0; i < parts.length; i++) {
    if (parts[i].toLowerCase() === 'file' && parts[i + 1]?.startsWith('/')) out.push(`${parts[i]}:${parts[++i]}`);
    else out.push(parts[i]);
  }
  return out.filter((d) => d !== '').map((d) => realPath(d, '--lower'));
}

function parse(args: string[], options: Options, what: string): { values: Values; positionals: string[] } {
  try {
    return parseNodeArgs({ args, options, strict: true, allowPositionals: true }) as { values: Values; positionals: string[] };
  } catch (err) {
    throw new UsageError(`${what}: ${(err as Error).message.split('\n')[0]}`);
  }
}

/** A whiteout format name (the engine's registered formats, and 'auto' where `auto`). */
function whiteoutsValue(v: string | undefined, auto: boolean, flag: string): string | undefined {
  if (v === undefined) return undefined;
  const allowed = auto ? [...whiteoutFormatNames(), 'auto'] : whiteoutFormatNames();
  if (!allowed.includes(v)) throw new UsageError(`${flag} must be ${listChoices(allowed)}, not ${JSON.stringify(v)}`);
  return v;
}

/** Parse argv (without node and the script). Throws UsageError for anything malformed. */
export function parseCommandLine(argv: string[]): CommandLine {
  // The command is the first operand: options before it are the stack's, after it the command's.
  const { tokens } = parseNodeArgs({ args: argv, options: STACK_OPTIONS, strict: false, allowPositionals: true, tokens: true });
  const first = tokens.find((t) => t.kind === 'positional');
  const at = first ? first.index : argv.length;
  const { values: g } = parse(argv.slice(0, at), STACK_OPTIONS, 'overlayws');
  const command = argv[at];
  const stack: StackOptions = {
    lower: (g.lower as string[] | undefined)?.flatMap(splitLower),
    upper: g.upper === undefined ? undefined : realPath(g.upper as string, '--upper'),
    work: g.work === undefined ? undefined : realPath(g.work as string, '--work'),
    whiteouts: whiteoutsValue(g.whiteouts as string | undefined, true, '--whiteouts'),
    userxattr: g.userxattr as boolean | undefined,
    mountOpts: g['mount-opts'] as string | undefined,
    dockerLayer: g['docker-layer'] === undefined ? undefined : realPath(g['docker-layer'] as string, '--docker-layer'),
    spec: g.spec === undefined ? undefined : realPath(g.spec as string, '--spec'),
    image: g.image === undefined ? undefined : hasScheme(g.image as string, 'file') ? realPath(g.image as string, '--image') : (g.image as string),
    workspace: g.workspace === undefined ? undefined : realPath(g.workspace as string, '--workspace'),
  };
  if (g.help) return { help: true, stack, command: command ?? '', options: {}, operands: [], usesUris: false };
  if (command === undefined) throw new UsageError('no command');
  const spec = COMMANDS[command];
  if (!spec) throw new UsageError(`unknown command ${JSON.stringify(command)}`);
  let rest = argv.slice(at + 1);
  // chmod -w FILE: a MODE that starts with '-' is no option (coreutils reads it so too).
  if (command === 'chmod' && /^-[rwxXst]/.test(rest[0] ?? '')) rest = ['--', ...rest];
  const { values, positionals } = parse(rest, { ...HELP, ...spec.options }, command);
  if (values.help) return { help: true, stack, command, options: values, operands: [], usesUris: false };
  const { kinds, optional = 0 } = spec.operands(values);
  if (positionals.length > kinds.length || positionals.length < kinds.length - optional) throw new UsageError(spec.usage);

  const names = new Set<string>();
  if (g.overlay !== undefined) names.add(g.overlay as string);
  let usesUris = false;
  const operands = positionals.map((arg, i) => {
    const kind = kinds[i];
    if (kind === 'text') return arg;
    if (kind === 'real') return realPath(arg, `${command}'s ${i === 0 ? 'FILE' : 'DIR'}`);
    const uri = parseOverlayUri(arg);
    if (uri) {
      names.add(uri.name);
      usesUris = true;
      return uri.path;
    }
    if (kind === 'path' && hasScheme(arg, 'file'))
      throw new UsageError(`${arg}: a file: URI names a real file; ${command} takes a path in the overlay (/PATH, or overlay://NAME/PATH with --workspace)`);
    return arg;
  });
  if (names.size > 1) throw new UsageError(`one command works on one overlay; the arguments name ${[...names].map((n) => JSON.stringify(n)).join(' and ')}`);
  const overlayName = names.size === 1 ? [...names][0] : undefined;
  if (overlayName !== undefined && stack.workspace === undefined)
    throw new UsageError(
      `${usesUris ? `overlay://${overlayName}/...` : `--overlay ${overlayName}`} needs --workspace FILE.code-workspace: the workspace file whose "overlay.overlays" setting defines ${JSON.stringify(overlayName)}`,
    );
  if (command === 'commit') {
    for (const k of ['docker-archive', 'oci-layout'] as const) if (values[k] !== undefined) values[k] = realPath(values[k] as string, `commit --${k}`);
    if (values['docker-archive'] === undefined && values['oci-layout'] === undefined && !values.load)
      throw new UsageError('commit: give at least one output: --docker-archive FILE.tar, --oci-layout DIR or --load');
  }
  if (command === 'import-layer') {
    values.whiteouts = whiteoutsValue(values.whiteouts as string | undefined, false, 'import-layer: --whiteouts');
  }
  return { help: false, stack, command, options: values, operands, overlayName, usesUris };
}
