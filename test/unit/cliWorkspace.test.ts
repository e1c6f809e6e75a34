/**
 * `overlayws --workspace FILE.code-workspace COMMAND overlay://NAME/...`: every command through the
 * real binary, on a workspace file written as VS Code writes them (comments, trailing commas).
 */
import { after, before, describe, it } from 'mocha';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeStack, type TestStack } from './helpers';

const BIN = path.resolve(__dirname, '../../../bin/overlayws.js');

function run(args: string[], opts: { input?: string; home?: string } = {}): { code: number | null; out: string; err: string } {
  const env = opts.home ? { ...process.env, HOME: opts.home } : process.env;
  const r = spawnSync(process.execPath, [BIN, ...args], { input: opts.input, encoding: 'utf8', env });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('overlayws --workspace with overlay:// URIs', () => {
  let s: TestStack;
  let ws = '';
  let home = '';
  const W = (): string[] => ['--workspace', ws];

  before(() => {
    s = makeStack('kernel', [{ 'src/a b.txt': 'lower a b', 'src/keep': 'keep', 'docs/d': 'd' }]);
    // The workspace file sits in a folder of its own; the stack is named by relative and ~/ paths.
    const folder = path.join(s.dir, 'ws folder');
    fs.mkdirSync(folder);
    home = s.dir;
    ws = path.join(folder, 'demo.code-workspace');
    fs.writeFileSync(
      ws,
      `// written by hand, as VS Code allows
{
  "folders": [{ "uri": "overlay://demo/" }, { "uri": "overlay://other/" },],
  "settings": {
    /* two stacks */
    "overlay.overlays": {
      "demo": { "lower": ["../${path.basename(s.lower[0])}"], "upper": "~/upper", "work": "${s.work}", "whiteouts": "kernel", },
      "other": { "lower": ["../${path.basename(s.lower[0])}"] },
    },
  },
}
`,
    );
  });

  after(() => s.cleanup());

  it('runs every command on overlay://NAME/PATH, relative and ~/ paths resolved like the extension', () => {
    const ok = (args: string[], input?: string): string => {
      const r = run([...W(), ...args], { input, home });
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.err}`);
      return r.out;
    };
    assert.equal(ok(['ls', 'overlay://demo/src']), 'f a b.txt\nf keep\n');
    assert.equal(ok(['cat', 'overlay://demo/src/a%20b.txt']), 'lower a b');
    assert.equal(JSON.parse(ok(['stat', 'overlay://demo/src/keep'])).size, 4);
    assert.equal(JSON.parse(ok(['resolve', 'overlay://demo/src/keep'])).realPath, path.join(s.lower[0], 'src/keep'));
    ok(['write', 'overlay://demo/src/new%231'], 'new');
    ok(['append', 'overlay://demo/src/new%231'], '+');
    ok(['truncate', 'overlay://demo/src/made', '3']);
    ok(['mkdir', '-p', 'overlay://demo/x/y']);
    ok(['mv', 'overlay://demo/src/keep', 'overlay://demo/x']);
    ok(['ln', '-s', 'overlay://demo/x/keep', 'overlay://demo/x/y']);
    ok(['chmod', '600', 'overlay://demo/x/keep']);
    ok(['rm', 'overlay://demo/docs/d']);
    ok(['rmdir', 'overlay://demo/docs']);
    ok(['rm', '-rf', 'overlay://demo/nothing']);
    assert.equal(fs.readFileSync(path.join(s.upper, 'src/new#1'), 'utf8'), 'new+');
    assert.equal(fs.statSync(path.join(s.upper, 'src/made')).size, 3);
    assert.equal(fs.readlinkSync(path.join(s.upper, 'x/y/keep')), '/x/keep');
    assert.equal(fs.statSync(path.join(s.upper, 'x/keep')).mode & 0o777, 0o600);
    assert.equal(ok(['diff', 'overlay://demo/x']), 'A /x\nA /x/keep\nA /x/y\nA /x/y/keep\n');
    assert.deepEqual(
      ok(['tree', 'overlay://demo/x'])
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).path),
      ['/x/keep', '/x/y', '/x/y/keep'],
    );
    assert.equal(ok(['cat', 'overlay://demo/x/y/keep']), 'keep');
    // export and import-layer take real paths: plain or file: URIs.
    const tar = path.join(s.dir, 'layer 1.tar');
    ok(['--overlay', 'demo', 'export', `file://${encodeURI(tar)}`]);
    assert.ok(fs.statSync(tar).size > 0);
    const into = path.join(s.dir, 'imported');
    ok(['--overlay', 'demo', 'import-layer', `file://${encodeURI(tar)}`, into]);
    assert.equal(fs.readFileSync(path.join(into, 'src/new#1'), 'utf8'), 'new+');
    assert.equal(fs.lstatSync(path.join(into, 'docs')).isCharacterDevice(), true);
    // The lower layer was never written.
    assert.deepEqual(fs.readdirSync(path.join(s.lower[0], 'src')).sort(), ['a b.txt', 'keep']);
  });

  it('names paths in errors the way they were given', () => {
    const r = run([...W(), 'cat', 'overlay://demo/no%20such'], { home });
    assert.equal(r.code, 1);
    assert.equal(r.err, "overlayws: ENOENT: no such file or directory, 'overlay://demo/no%20such'\n");
    const same = run([...W(), 'mv', 'overlay://demo/src/a%20b.txt', 'overlay://demo/src/a%20b.txt'], { home });
    assert.equal(same.code, 1);
    assert.match(same.err, /^overlayws: EINVAL: '\/src\/a b.txt' and '\/src\/a b.txt' are the same file, 'overlay:\/\/demo\/src\/a%20b.txt'\n$/);
    const ro = run([...W(), 'write', 'overlay://other/z'], { input: 'x', home });
    assert.equal(ro.code, 1);
    assert.match(ro.err, /^overlayws: EROFS: .*'overlay:\/\/other\/z'\n$/);
  });

  it('finds the overlay by URI, --overlay, or as the only one; matches a name VS Code printed in lower case', () => {
    const one = path.join(path.dirname(ws), 'one.code-workspace');
    fs.writeFileSync(one, JSON.stringify({ settings: { overlay: { overlays: { Demo: { lower: [s.lower[0]] } } } } }));
    assert.equal(run(['--workspace', one, 'ls', '/']).out, 'd docs\nd src\n');
    assert.equal(run(['--workspace', one, 'cat', 'overlay://demo/src/keep']).out, 'keep');
    assert.equal(run([...W(), '--overlay', 'other', 'ls', '/src']).code, 0);
  });

  it('says what is wrong: no --workspace, two overlays, an unknown one, a broken file', () => {
    const noWs = run(['cat', 'overlay://demo/x']);
    assert.equal(noWs.code, 2);
    assert.match(noWs.err, /needs --workspace FILE\.code-workspace/);
    const two = run([...W(), 'mv', 'overlay://demo/a', 'overlay://other/a'], { home });
    assert.equal(two.code, 2);
    assert.match(two.err, /one command works on one overlay; the arguments name "demo" and "other"/);
    const unnamed = run([...W(), 'diff'], { home });
    assert.equal(unnamed.code, 2);
    assert.match(unnamed.err, /name the overlay .*: overlay:\/\/NAME\/PATH or --overlay NAME \(it defines "demo", "other"\)/);
    const unknown = run([...W(), 'ls', 'overlay://nope/'], { home });
    assert.equal(unknown.code, 2);
    assert.match(unknown.err, /has no overlay "nope" in "overlay\.overlays" \(it defines "demo", "other"\)/);
    const both = run([...W(), '--lower', s.lower[0], 'ls', 'overlay://demo/'], { home });
    assert.equal(both.code, 2);
    const broken = path.join(path.dirname(ws), 'broken.code-workspace');
    fs.writeFileSync(broken, '{ "settings": { "overlay.overlays": { "a": { "lower": ["x"] }\n');
    const b = run(['--workspace', broken, 'ls', 'overlay://a/']);
    assert.equal(b.code, 1);
    assert.match(b.err, /^overlayws: EINVAL: not a workspace file: .* at line 2, column 1, '.*broken\.code-workspace'\n$/);
    const bad = path.join(path.dirname(ws), 'bad.code-workspace');
    fs.writeFileSync(bad, JSON.stringify({ settings: { 'overlay.overlays': { a: { lower: 'x' } } } }));
    assert.match(run(['--workspace', bad, 'ls', 'overlay://a/']).err, /entry "a": "lower" must be a non-empty array of directories/);
    assert.match(run(['--workspace', path.join(s.dir, 'missing.code-workspace'), 'ls', '/']).err, /^overlayws: ENOENT: /);
  });
});
