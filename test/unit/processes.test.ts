/**
 * client/src/processes.ts on real processes: which are this VS Code's own (the test runner
 * plays the extension host), and SIGHUP only to the very process the server named, refused
 * where we may not signal it (as nobody, to a process of root).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, test } from 'mocha';
import { hangUp, ownProcesses } from '../../client/src/processes';
import { skipBecause } from '../mocha/skip';

const children: ChildProcess[] = [];
function start(cmd: string, args: string[]): ChildProcess {
  const c = spawn(cmd, args, { stdio: 'ignore' });
  children.push(c);
  return c;
}
const startTimeOf = (pid: number): number => {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
};
const childrenOf = (pid: number): number[] =>
  fs
    .readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .filter((e) => {
      try {
        const stat = fs.readFileSync(`/proc/${e}/stat`, 'latin1');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid;
      } catch {
        return false;
      }
    })
    .map(Number);

async function until<T>(probe: () => T | undefined, what: string): Promise<T> {
  const end = Date.now() + 10_000;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('processes (client/src/processes.ts)', () => {
  afterEach(() => {
    for (const c of children.splice(0)) c.kill('SIGKILL');
  });

  test("ownProcesses: this process, its VS Code helpers (same executable, --type=), the server and what runs below it; not a terminal's program", async () => {
    const helper = start(process.execPath, ['-e', 'setInterval(() => {}, 1000)', '--', '--type=fileWatcher']);
    const notHelper = start(process.execPath, ['-e', 'setInterval(() => {}, 1000)']);
    const program = start('sleep', ['100']);
    const server = start(process.execPath, ['-e', "require('node:child_process').spawn('sleep', ['100'], { stdio: 'ignore' }); setInterval(() => {}, 1000)"]);
    const belowServer = await until(() => childrenOf(server.pid as number)[0], 'the server’s child');
    await until(() => (fs.readFileSync(`/proc/${helper.pid}/cmdline`, 'utf8').includes('--type=') ? true : undefined), 'the helper runs');
    const own = ownProcesses(server.pid);
    assert.ok(own.has(process.pid));
    assert.ok(own.has(helper.pid as number), 'a helper of the same executable with --type=');
    assert.ok(own.has(server.pid as number), 'the overlay server');
    assert.ok(own.has(belowServer), 'a process below the server');
    assert.ok(!own.has(notHelper.pid as number), 'the same executable without --type= is not VS Code’s');
    assert.ok(!own.has(program.pid as number), 'another program is not');
    assert.ok(!own.has(1));
  });

  test('hangUp: sent to the process named; a pid that names another process now is left alone', async () => {
    const sleeper = start('sleep', ['100']);
    const pid = sleeper.pid as number;
    const ended = new Promise<NodeJS.Signals | null>((resolve) => sleeper.once('exit', (_code, signal) => resolve(signal)));
    assert.equal(hangUp({ pid, startTime: startTimeOf(pid) + 1 }), 'gone', 'another start time: not that process');
    assert.equal(hangUp({ pid, startTime: startTimeOf(pid) }), 'sent');
    assert.equal(await ended, 'SIGHUP');
    assert.equal(hangUp({ pid, startTime: 1 }), 'gone');
  });

  test('hangUp: refused for a process we may not signal (nobody, to a process of root)', function () {
    if (process.getuid?.() !== 0) skipBecause(this, 'needs root: the test runs as nobody beside a process of root');
    const sleeper = start('sleep', ['100']);
    const pid = sleeper.pid as number;
    const moduleFile = path.resolve(__dirname, '../../client/src/processes.js');
    const r = spawnSync(
      process.execPath,
      ['-e', `console.log(require(${JSON.stringify(moduleFile)}).hangUp({ pid: ${pid}, startTime: ${startTimeOf(pid)} }))`],
      { encoding: 'utf8', uid: 65534, gid: 65534 },
    );
    assert.equal(r.stdout.trim(), 'not permitted', r.stderr);
    assert.equal(sleeper.exitCode, null, 'still running');
  });
});
