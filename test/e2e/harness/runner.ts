/**
 * A tiny test runner for the end-to-end suite (mocha is not a dependency here).
 *
 * Test files call `test(name, fn)` at load time; `runRegistered()` runs the cases one at
 * a time, each with its own timeout, prints `ok - name` / `not ok - name: error`, and
 * finally a `@@e2e-result {"passed":N,"failed":N}` line the driver turns into its summary.
 *
 * Window reloads: `vscode.openFolder` (and a workspace change) reloads the workbench and
 * kills this extension host mid-test. The driver puts the tests module back into the new
 * window, which calls `run()` again. The runner keeps its progress in a state file in the
 * driver's control directory, so the second `run()` skips what already finished and runs
 * the interrupted test again with `ctx.resumed === true` — that test then checks the state
 * after the reload instead of triggering it a second time.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CONTROL_DIR_ENV, RESULT_MARKER, STATE_FILE } from './protocol';

export interface TestContext {
  /** The window reloaded while this test ran, and this is the run in the new window. */
  readonly resumed: boolean;
  /** End the test as skipped, saying why (counted as skipped, never as passed). */
  skip(reason: string): never;
}

class SkipSignal extends Error {}

export type TestFn = (ctx: TestContext) => Promise<void> | void;

export interface TestOptions {
  /** Per-test timeout; default 30 s. */
  readonly timeoutMs?: number;
}

export interface RunResult {
  readonly passed: number;
  readonly failed: number;
  readonly skipped: number;
}

interface TestCase {
  readonly name: string;
  readonly fn: TestFn;
  readonly timeoutMs: number;
}

interface RunnerState {
  /** Finished tests and their outcome, in run order. */
  results: Record<string, 'passed' | 'failed' | 'skipped'>;
  /** The test in progress when the state was last written, if any. */
  running?: string;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const registry: TestCase[] = [];

/** Registers a test case. Call at module load time, from a `*.test.ts` file. */
export function test(name: string, fn: TestFn, options: TestOptions = {}): void {
  if (registry.some((t) => t.name === name)) {
    throw new Error(`duplicate e2e test name: ${name}`);
  }
  registry.push({ name, fn, timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS });
}

/** Runs every registered test (filtered by the `E2E_GREP` substring, if set) in order. */
export async function runRegistered(): Promise<RunResult> {
  const store = stateStore();
  const state = store.load();
  const grep = process.env.E2E_GREP;
  const cases = registry.filter((t) => !grep || t.name.includes(grep));
  if (cases.length === 0) {
    console.log(`# no e2e tests${grep ? ` match E2E_GREP=${grep}` : ''}`);
  }

  for (const t of cases) {
    if (state.results[t.name]) {
      continue; // finished before a window reload
    }
    const resumed = state.running === t.name;
    state.running = t.name;
    store.save(state);

    const started = Date.now();
    try {
      const skip = (reason: string): never => {
        throw new SkipSignal(reason);
      };
      await withTimeout(
        Promise.resolve().then(() => t.fn({ resumed, skip })),
        t.timeoutMs,
        t.name,
      );
      state.results[t.name] = 'passed';
      console.log(`ok - ${t.name} (${Date.now() - started} ms)${resumed ? ' [resumed]' : ''}`);
    } catch (err) {
      if (err instanceof SkipSignal) {
        state.results[t.name] = 'skipped';
        console.log(`ok - ${t.name} # SKIP ${err.message}`);
        state.running = undefined;
        store.save(state);
        continue;
      }
      state.results[t.name] = 'failed';
      console.log(`not ok - ${t.name}: ${describe(err)}`);
      const frames = err instanceof Error ? (err.stack ?? '').split('\n').filter((l) => /^\s+at /.test(l)) : [];
      if (frames.length > 0) {
        console.log(frames.map((l) => `#   ${l.trim()}`).join('\n'));
      }
    }
    state.running = undefined;
    store.save(state);
  }

  const outcomes = Object.values(state.results);
  const result: RunResult = {
    passed: outcomes.filter((o) => o === 'passed').length,
    failed: outcomes.filter((o) => o === 'failed').length,
    skipped: outcomes.filter((o) => o === 'skipped').length,
  };
  console.log(`${RESULT_MARKER} ${JSON.stringify(result)}`);
  return result;
}

function withTimeout<T>(p: Promise<T>, ms: number, name: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${name}`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    return err.message
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean)
      .join(' ');
  }
  return String(err);
}

interface StateStore {
  load(): RunnerState;
  save(state: RunnerState): void;
}

/** Progress survives a window reload only when the driver gave us a control directory. */
function stateStore(): StateStore {
  const dir = process.env[CONTROL_DIR_ENV];
  if (!dir) {
    let memory: RunnerState = { results: {} };
    return { load: () => memory, save: (s) => (memory = s) };
  }
  const file = path.join(dir, STATE_FILE);
  return {
    load() {
      try {
        return JSON.parse(fs.readFileSync(file, 'utf8')) as RunnerState;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
          return { results: {} };
        }
        throw err;
      }
    },
    save(state) {
      const tmp = `${file}.${process.pid}.tmp`;
      fs.writeFileSync(tmp, JSON.stringify(state));
      fs.renameSync(tmp, file);
    },
  };
}
