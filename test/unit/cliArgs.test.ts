/** overlayws's command line: stack options, coreutils-style command options, URIs as operands. */
import { describe, it } from 'mocha';
import assert from 'node:assert/strict';
import { overlayUri, parseCommandLine, parseOverlayUri, splitLower, UsageError } from '../../server/src/cliArgs';
import { applyMode, parseSize } from '../../server/src/cliCommands';

const STACK = ['--lower', '/l', '--upper', '/u', '--work', '/w'];
const WS = ['--workspace', '/ws/demo.code-workspace'];

const usage = (argv: string[], message: RegExp): void => {
  assert.throws(
    () => parseCommandLine(argv),
    (err: unknown) => err instanceof UsageError && message.test((err as Error).message),
  );
};

describe('overlayws command line', () => {
  it('takes the stack before the command and the command options after it', () => {
    const cl = parseCommandLine([...STACK, '--whiteouts', 'oci', 'mkdir', '-p', '/a/b']);
    assert.deepEqual(cl.stack.lower, ['/l']);
    assert.equal(cl.stack.upper, '/u');
    assert.equal(cl.stack.whiteouts, 'oci');
    assert.equal(cl.command, 'mkdir');
    assert.equal(cl.options.parents, true);
    assert.deepEqual(cl.operands, ['/a/b']);
  });

  it('reads grouped and long coreutils flags', () => {
    const rm = parseCommandLine([...STACK, 'rm', '-rf', '/d']);
    assert.deepEqual([rm.options.recursive, rm.options.force], [true, true]);
    assert.equal(parseCommandLine([...STACK, 'rm', '-R', '/d']).options.R, true);
    const ln = parseCommandLine([...STACK, 'ln', '-sfT', 'target', '/p']);
    assert.deepEqual([ln.options.symbolic, ln.options.force, ln.options['no-target-directory']], [true, true, true]);
    assert.equal(parseCommandLine([...STACK, 'mv', '--no-target-directory', '/a', '/b']).options['no-target-directory'], true);
    const t = parseCommandLine([...STACK, 'truncate', '-c', '-s', '5', '/f']);
    assert.deepEqual([t.options['no-create'], t.options.size, t.operands], [true, '5', ['/f']]);
    assert.deepEqual(parseCommandLine([...STACK, 'truncate', '/f', '5']).operands, ['/f', '5']);
    assert.deepEqual(parseCommandLine([...STACK, 'rm', '--', '/-x']).operands, ['/-x']);
  });

  it('refuses what it does not know, with a usage error', () => {
    usage([...STACK, 'bogus'], /unknown command "bogus"/);
    usage([...STACK, 'mkdir', '--bogus', '/x'], /mkdir: Unknown option '--bogus'/);
    usage([...STACK, '--bogus', 'ls', '/'], /Unknown option '--bogus'/);
    usage([...STACK, 'mv', '/a'], /^mv \[-T\]/);
    usage([...STACK, 'mv', '/a', '/b', '/c'], /^mv \[-T\]/);
    usage([...STACK, 'truncate', '-s', '5', '/f', '6'], /^truncate/);
    usage([...STACK], /no command/);
    usage(['--upper'], /argument missing/);
    usage(['--whiteouts', 'both', 'ls', '/'], /--whiteouts must be kernel, oci or auto/);
    usage(['import-layer', 'a.tar', 'dir', '--whiteouts', 'auto'], /import-layer: --whiteouts must be kernel or oci/);
  });

  it('--help before or after the command asks for the usage', () => {
    assert.equal(parseCommandLine(['--help']).help, true);
    assert.equal(parseCommandLine(['-h']).help, true);
    assert.equal(parseCommandLine([...STACK, 'mv', '--help']).help, true);
  });

  it('splits --lower on colons; \\: escapes one; a file: URI keeps its own; --lower may repeat', () => {
    assert.deepEqual(splitLower('/a:/b\\:c:file:///x%3Ay:file:/z'), ['/a', '/b:c', '/x:y', '/z']);
    assert.deepEqual(parseCommandLine(['--lower', '/a', '--lower', 'file:///b%20c', 'ls', '/']).stack.lower, ['/a', '/b c']);
  });

  it('takes file: URIs wherever a real path is asked for', () => {
    const cl = parseCommandLine([
      '--lower',
      'file:///l',
      '--upper',
      'file:///u%20x',
      '--work',
      '/w',
      '--spec',
      'file:///s.json',
      'export',
      'file:///out/layer%231.tar',
    ]);
    assert.equal(cl.stack.upper, '/u x');
    assert.equal(cl.stack.spec, '/s.json');
    assert.deepEqual(cl.operands, ['/out/layer#1.tar']);
    assert.deepEqual(parseCommandLine(['import-layer', 'file:///a.tar', 'file:///dir']).operands, ['/a.tar', '/dir']);
    usage([...STACK, 'cat', 'file:///etc/passwd'], /a file: URI names a real file; cat takes a path in the overlay/);
    usage([...STACK, 'export', 'overlay://x/a.tar'], /is a real path .* not an overlay URI/);
    usage(['--upper', 'file://host/u', 'ls', '/'], /on another host/);
  });

  it('turns overlay:// URIs into overlay paths of one overlay, with --workspace', () => {
    const cl = parseCommandLine([...WS, 'mv', 'overlay://demo/src/a%20b.ts', 'overlay://demo/src/%EF%9E%80x']);
    assert.equal(cl.overlayName, 'demo');
    assert.equal(cl.usesUris, true);
    assert.deepEqual(cl.operands, ['/src/a b.ts', '/src/\uf780x']);
    assert.deepEqual(parseCommandLine([...WS, 'ls', 'overlay://demo']).operands, ['/']);
    // Plain paths mix with URIs: both are paths in the one overlay.
    assert.deepEqual(parseCommandLine([...WS, 'mv', 'overlay://demo/a', '/b']).operands, ['/a', '/b']);
    // An overlay URI as a symlink's target is the path it names.
    assert.deepEqual(parseCommandLine([...WS, 'ln', '-s', 'overlay://demo/t', 'overlay://demo/l']).operands, ['/t', '/l']);
    assert.equal(parseCommandLine([...WS, '--overlay', 'demo', 'diff']).overlayName, 'demo');
    assert.equal(parseCommandLine([...WS, 'diff']).overlayName, undefined);
  });

  it('refuses URIs that name two overlays, none, or come without --workspace', () => {
    usage([...WS, 'mv', 'overlay://a/x', 'overlay://b/y'], /one command works on one overlay; the arguments name "a" and "b"/);
    usage([...WS, '--overlay', 'a', 'cat', 'overlay://b/x'], /"a" and "b"/);
    usage([...STACK, 'cat', 'overlay://demo/x'], /overlay:\/\/demo\/\.\.\. needs --workspace FILE\.code-workspace/);
    usage(['--overlay', 'demo', 'diff'], /^--overlay demo needs --workspace/);
    usage([...WS, 'cat', 'overlay:/x'], /an overlay URI names its overlay: overlay:\/\/NAME\/PATH/);
    usage([...WS, 'cat', 'overlay://demo/a?b'], /no \?query or #fragment/);
  });

  it('parses and prints overlay URIs with vscode-uri', () => {
    assert.deepEqual(parseOverlayUri('overlay://my%20ov/a%2Fb'), { name: 'my ov', path: '/a/b' });
    assert.equal(parseOverlayUri('/plain'), undefined);
    assert.equal(parseOverlayUri('OVERLAY://d/x')?.path, '/x');
    assert.equal(overlayUri('my ov', '/a b#1'), 'overlay://my%20ov/a%20b%231');
    const back = parseOverlayUri(overlayUri('demo', '/\uf780name'));
    assert.deepEqual(back, { name: 'demo', path: '/\uf780name' });
  });

  it("reads truncate's SIZE as coreutils does", () => {
    assert.equal(parseSize('12')(99), 12);
    assert.equal(parseSize('1K')(0), 1024);
    assert.equal(parseSize('1KiB')(0), 1024);
    assert.equal(parseSize('2KB')(0), 2000);
    assert.equal(parseSize('1m')(0), 1024 * 1024);
    assert.equal(parseSize('+5')(10), 15);
    assert.equal(parseSize('-5')(3), 0);
    assert.equal(parseSize('<5')(10), 5);
    assert.equal(parseSize('>5')(3), 5);
    assert.equal(parseSize('/4')(10), 8);
    assert.equal(parseSize('%4')(10), 12);
    assert.throws(() => parseSize('5X'), UsageError);
    assert.throws(() => parseSize('-'), UsageError);
    assert.throws(() => parseSize('%0'), UsageError);
    assert.throws(() => parseSize('9E'), /EFBIG|too large/);
  });

  it("applies chmod's MODE as GNU chmod does", () => {
    const f = (spec: string, old: number, umask = 0o022): string => applyMode(spec, old, false, umask).toString(8);
    const d = (spec: string, old: number, umask = 0o022): string => applyMode(spec, old, true, umask).toString(8);
    assert.equal(f('644', 0o4755), '644');
    assert.equal(f('u+x,go-r', 0o644), '700');
    assert.equal(f('+w', 0o444), '644'); // no ugoa: the umask's bits stay
    assert.equal(f('a+w', 0o444), '666');
    assert.equal(f('-x', 0o777), '666');
    assert.equal(f('g=u,o=', 0o640), '660');
    assert.equal(f('a=rX', 0o744), '555');
    assert.equal(f('a=rX', 0o644), '444');
    assert.equal(d('a=rX', 0o700), '555');
    assert.equal(f('u+s,+t', 0o755), '5755');
    assert.equal(d('0755', 0o2775), '2755'); // a directory keeps set-group-ID for a 4-digit mode
    assert.equal(d('00755', 0o2775), '755');
    assert.equal(d('g-s', 0o2775), '775');
    assert.equal(d('=', 0o2775), '2000');
    assert.throws(() => applyMode('u+q', 0, false, 0), UsageError);
    assert.throws(() => applyMode('17777', 0, false, 0), UsageError);
    assert.throws(() => applyMode('', 0, false, 0), UsageError);
    assert.deepEqual(parseCommandLine([...STACK, 'chmod', '-w', '/a']).operands, ['-w', '/a']);
  });
});
