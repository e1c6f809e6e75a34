/**
 * F5 does what .vscode/launch.json says: the task before "Run Extension" bundles the
 * extension and writes the workspace it opens, and "Attach to Server" attaches to the port
 * the client starts the server's inspector on.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, test } from 'mocha';
import * as ts from 'typescript';
import { SERVER_INSPECT_PORT } from '../../client/src/debugPort';

const REPO = path.resolve(__dirname, '../../..');

interface LaunchConfig {
  name: string;
  port?: number;
  args?: string[];
  preLaunchTask?: string;
  autoAttachChildProcesses?: boolean;
}
interface Task {
  label?: string;
  type: string;
  script?: string;
}

/** .vscode files are JSON with comments, as VS Code reads them. */
function jsonc<T>(file: string): T {
  const r = ts.parseConfigFileTextToJson(file, fs.readFileSync(path.join(REPO, file), 'utf8'));
  assert.ok(!r.error, `${file}: ${ts.flattenDiagnosticMessageText(r.error?.messageText, '\n')}`);
  return r.config as T;
}

describe('.vscode: F5', () => {
  const launch = jsonc<{ configurations: LaunchConfig[] }>('.vscode/launch.json');
  const tasks = jsonc<{ tasks: Task[] }>('.vscode/tasks.json');
  const scripts = (JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
  const config = (name: string): LaunchConfig => {
    const c = launch.configurations.find((x) => x.name === name);
    assert.ok(c, `no launch configuration "${name}"`);
    return c;
  };

  test('"Attach to Server" attaches to the port the client starts the server with', () => {
    assert.equal(config('Attach to Server').port, SERVER_INSPECT_PORT);
  });

  test('"Run Extension" attaches to child processes; its preLaunchTask bundles the extension and writes the workspace it opens', () => {
    const run = config('Run Extension');
    assert.equal(run.autoAttachChildProcesses, true);
    const opened = run.args?.find((a) => a.endsWith('.code-workspace'))?.replace('${workspaceFolder}/', '');
    assert.ok(opened, 'Run Extension opens no .code-workspace');
    const task = tasks.tasks.find((t) => (t.label ?? `${t.type}: ${t.script}`) === run.preLaunchTask);
    assert.ok(task?.script, `no npm task "${run.preLaunchTask}" in .vscode/tasks.json`);
    const script = scripts[task.script];
    assert.ok(script, `no npm script "${task.script}"`);
    assert.match(script, /scripts\/build\.mjs/, 'the task does not bundle the extension');
    const prepare = /scripts\/start\.mjs --prepare (\S+)/.exec(script);
    assert.ok(prepare, 'the task does not prepare the demo workspace');

    // What --prepare DIR writes is the file the launch configuration opens in DIR.
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ovl-f5-'));
    try {
      const dir = path.join(tmp, prepare[1]);
      const written = execFileSync(process.execPath, [path.join(REPO, 'scripts/start.mjs'), '--prepare', dir], { encoding: 'utf8' }).trim();
      assert.equal(path.relative(tmp, written), opened);
      assert.ok(fs.statSync(written).isFile());
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});
