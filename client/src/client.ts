/**
 * The LanguageClient wiring: starts dist/server.js over IPC, hands it the configured
 * overlays, restarts it when it dies, and gives the rest of the extension typed
 * requests that wait for a running server.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import {
  CloseAction,
  ErrorAction,
  LanguageClient,
  State,
  TransportKind,
  type LanguageClientOptions,
  type NotificationType,
  type RequestType,
  type RequestType0,
  type ServerOptions,
} from 'vscode-languageclient/node';
import type { AnyRequest } from '../../shared/src/catalog';
import type { ParamsOf, ResultOf } from '../../shared/src/messages';
import {
  AddOverlay,
  ListOverlays,
  RemoveOverlay,
  type InitializationOptions,
  type MountState,
  type OverlayInfo,
  type StackSpec,
} from '../../shared/src/protocol';
import { SERVER_NODE_FLAGS } from '../../shared/src/serverFlags';
import { configuredOverlays, staleReadersSetting, watchLowerLayersSetting } from './config';
import { SERVER_INSPECT_PORT } from './debugPort';

export type ServerState = 'starting' | 'running' | 'restarting' | 'stopped';

const MAX_RESTARTS = 5;
const RESTART_WINDOW_MS = 3 * 60_000;

export class OverlayClient implements vscode.Disposable {
  readonly output: vscode.LogOutputChannel;
  private client: LanguageClient;
  private readonly stateEmitter = new vscode.EventEmitter<ServerState>();
  /** Fires on every server state change. */
  readonly onDidChangeState = this.stateEmitter.event;
  private readonly startedEmitter = new vscode.EventEmitter<void>();
  /** Fires each time a server (first or restarted) is running and has the overlays. */
  readonly onDidStart = this.startedEmitter.event;
  private _state: ServerState = 'stopped';
  private restarts: number[] = [];
  private readonly open = new Map<string, OverlayInfo>();
  private readonly failed = new Map<string, string>();
  private readonly overlaysEmitter = new vscode.EventEmitter<void>();
  /** Fires when the overlays the server has open, or those that failed to open, change. */
  readonly onDidChangeOverlays = this.overlaysEmitter.event;
  /** Overlays opened for this window only (mounted overlays open as plain folders), by name. */
  private ephemeral = new Map<string, StackSpec>();
  private readonly writeEmitter = new vscode.EventEmitter<string>();
  /** Fires with the overlay's name when a request that may change it is sent, and again when it is answered. */
  readonly onWrite = this.writeEmitter.event;
  private readonly notificationHandlers: Array<{ type: NotificationType<unknown>; handler: (p: unknown) => void }> = [];
  restartCount = 0;
  /** Date.now() when the current server process was asked to start (the timeline line in afterStart). */
  private startedAt = Date.now();

  constructor(private readonly context: vscode.ExtensionContext) {
    this.output = vscode.window.createOutputChannel('Overlay Server', { log: true });
    this.client = this.create();
  }

  get state(): ServerState {
    return this._state;
  }

  /** Overlays the current server process has open, by name. */
  get overlays(): ReadonlyMap<string, OverlayInfo> {
    return this.open;
  }

  /** Overlays that failed to open, by name, with the server's message. */
  get failures(): ReadonlyMap<string, string> {
    return this.failed;
  }

  /** Records what the server has open (`info`) or no longer has (undefined) under `name`, and what failed. */
  private noteOverlay(name: string, info: OverlayInfo | undefined, failure?: string): void {
    if (info) this.open.set(name, info);
    else this.open.delete(name);
    if (failure === undefined) this.failed.delete(name);
    else this.failed.set(name, failure);
    this.overlaysEmitter.fire();
  }

  /** Records the mount the server holds for `name` now (overlay/mount, overlay/didChangeMount). */
  noteMount(name: string, mount: MountState | undefined): void {
    const info = this.open.get(name);
    if (!info || JSON.stringify(info.mount) === JSON.stringify(mount)) return;
    const next: OverlayInfo = { ...info };
    if (mount) next.mount = mount;
    else delete next.mount;
    this.open.set(name, next);
    this.overlaysEmitter.fire();
  }

  private forgetOverlays(): void {
    if (this.open.size === 0) return;
    this.open.clear();
    this.overlaysEmitter.fire();
  }

  /** PID of the server process: the child of this extension host that runs dist/server.js. */
  get pid(): number | undefined {
    if (this._state !== 'running') return undefined;
    const module = this.context.asAbsolutePath(path.join('dist', 'server.js'));
    for (const entry of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
        const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        if (ppid !== process.pid) continue;
        if (fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').includes(module)) return Number(entry);
      } catch {
        // gone, or not Linux
      }
    }
    return undefined;
  }

  private setState(s: ServerState): void {
    if (this._state !== s) {
      this._state = s;
      this.stateEmitter.fire(s);
    }
  }

  private create(): LanguageClient {
    const module = this.context.asAbsolutePath(path.join('dist', 'server.js'));
    // The server's current directory is the extension's own, not the first workspace folder (the
    // client's default): a process whose current directory is inside a mount keeps it busy.
    const cwd = this.context.extensionPath;
    const serverOptions: ServerOptions = {
      run: { module, transport: TransportKind.ipc, options: { cwd, execArgv: [...SERVER_NODE_FLAGS] } },
      debug: { module, transport: TransportKind.ipc, options: { cwd, execArgv: [...SERVER_NODE_FLAGS, '--nolazy', `--inspect=${SERVER_INSPECT_PORT}`] } },
    };
    const clientOptions: LanguageClientOptions = {
      documentSelector: [],
      outputChannel: this.output,
      // A function: a restarted server gets the overlays as they are configured now.
      initializationOptions: (): InitializationOptions => ({
        overlays: configuredOverlays(),
        watchLowerLayers: watchLowerLayersSetting(),
        scanHolders: staleReadersSetting() !== 'off',
      }),
      errorHandler: {
        error: () => ({ action: ErrorAction.Continue }),
        closed: () => {
          const now = Date.now();
          this.restarts = this.restarts.filter((t) => now - t < RESTART_WINDOW_MS);
          this.restarts.push(now);
          this.forgetOverlays();
          if (this.restarts.length > MAX_RESTARTS) {
            this.setState('stopped');
            return {
              action: CloseAction.DoNotRestart,
              message: `The overlay server stopped ${MAX_RESTARTS} times in 3 minutes and will not be restarted. Run "Overlay: Restart Server" to try again.`,
            };
          }
          this.restartCount++;
          this.setState('restarting');
          this.output.appendLine(`[client] the overlay server stopped; restarting (${this.restarts.length}/${MAX_RESTARTS})`);
          return { action: CloseAction.Restart, handled: true };
        },
      },
    };
    const client = new LanguageClient('overlay', 'Overlay Server', serverOptions, clientOptions);
    client.onDidChangeState((e) => {
      if (e.newState === State.Running) {
        void this.afterStart();
      } else if (e.newState === State.Starting) {
        if (this._state !== 'restarting') this.setState('starting');
      } else if (e.newState === State.Stopped && this._state !== 'restarting') {
        this.setState('stopped');
      }
    });
    for (const method of new Set(this.notificationHandlers.map((h) => h.type.method))) {
      this.dispatch(client, (this.notificationHandlers.find((h) => h.type.method === method) as { type: NotificationType<unknown> }).type);
    }
    return client;
  }

  private async afterStart(): Promise<void> {
    try {
      const list = await this.request(ListOverlays, undefined);
      this.open.clear();
      for (const o of list) this.open.set(o.name, o);
      this.overlaysEmitter.fire();
      await this.syncOverlays();
    } catch (err) {
      this.output.appendLine(`[client] listing overlays failed: ${String(err)}`);
    }
    this.setState('running');
    // One line per start: how long the server took to spawn, initialize and open the overlays
    // (the real-VS-Code benchmark, test/bench/vscode.ts, reads it from the log file).
    this.output.info(
      `[client] server running ${Date.now() - this.startedAt} ms after start (at ${new Date().toISOString()}); overlays open: ${[...this.open.keys()].join(', ') || '(none)'}`,
    );
    this.startedEmitter.fire();
  }

  async start(): Promise<void> {
    this.setState('starting');
    this.startedAt = Date.now();
    await this.client.start();
  }

  /** Stops the server process and starts a fresh one. */
  async restart(): Promise<void> {
    this.setState('restarting');
    this.restarts = [];
    this.forgetOverlays();
    try {
      await this.client.stop(5000);
    } catch {
      // already stopped
    }
    await this.client.dispose().catch(() => undefined);
    this.client = this.create();
    this.startedAt = Date.now();
    await this.client.start();
  }

  /**
   * Every handler added gets the notification. (The LanguageClient keeps ONE handler per
   * method, the last registered: the client registers one dispatcher per method.)
   */
  onNotification<P>(type: NotificationType<P>, handler: (params: P) => void): void {
    const first = !this.notificationHandlers.some((h) => h.type.method === type.method);
    this.notificationHandlers.push({ type: type as NotificationType<unknown>, handler: handler as (p: unknown) => void });
    if (first) this.dispatch(this.client, type as NotificationType<unknown>);
  }

  private dispatch(client: LanguageClient, type: NotificationType<unknown>): void {
    client.onNotification(type, (params: unknown) => {
      for (const h of this.notificationHandlers) {
        if (h.type.method !== type.method) continue;
        try {
          h.handler(params);
        } catch (err) {
          this.output.appendLine(`[client] handling ${type.method} failed: ${String((err as Error).stack ?? err)}`);
        }
      }
    });
  }

  /**
   * Sends a request of the protocol, typed by its definition. One that may change an
   * overlay (its `changesOverlay`) fires onWrite when sent and again when answered.
   */
  request<D extends AnyRequest>(def: D, params: ParamsOf<D>, token?: vscode.CancellationToken): Promise<ResultOf<D>> {
    const send = (): Promise<ResultOf<D>> =>
      def.type.numberOfParams === 0
        ? this.client.sendRequest(def.type as RequestType0<ResultOf<D>, void>, token)
        : this.client.sendRequest(def.type as unknown as RequestType<unknown, ResultOf<D>, void>, params, token);
    const name = def.changesOverlay ? (params as { name?: unknown } | undefined)?.name : undefined;
    if (typeof name !== 'string') return send();
    this.writeEmitter.fire(name);
    return send().finally(() => this.writeEmitter.fire(name));
  }

  /** Resolves once the server is running (or rejects after `timeoutMs`). */
  whenRunning(timeoutMs = 15_000): Promise<void> {
    if (this._state === 'running') return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        sub.dispose();
        reject(new Error(`the overlay server is not running (${this._state})`));
      }, timeoutMs);
      const sub = this.onDidStart(() => {
        clearTimeout(timer);
        sub.dispose();
        resolve();
      });
    });
  }

  /** Opens on the server every configured overlay it does not have, and closes removed ones. */
  async syncOverlays(): Promise<void> {
    const wanted = { ...Object.fromEntries(this.ephemeral), ...configuredOverlays() };
    for (const [name, spec] of Object.entries(wanted)) {
      const have = this.overlays.get(name);
      if (have && sameSpec(have.stack, spec)) continue;
      await this.addOverlay(name, spec).catch(() => undefined);
    }
    for (const name of [...this.overlays.keys()]) {
      if (!(name in wanted)) {
        await this.request(RemoveOverlay, { name }).catch(() => undefined);
        this.noteOverlay(name, undefined);
      }
    }
  }

  /** Replaces the ephemeral overlays and opens/closes them on the server. */
  async setEphemeral(overlays: Map<string, StackSpec>): Promise<void> {
    const same =
      overlays.size === this.ephemeral.size && [...overlays].every(([k, v]) => this.ephemeral.has(k) && sameSpec(this.ephemeral.get(k) as StackSpec, v));
    this.ephemeral = overlays;
    if (!same && this._state === 'running') await this.syncOverlays();
  }

  async addOverlay(name: string, spec: StackSpec): Promise<OverlayInfo> {
    try {
      const info = await this.request(AddOverlay, { name, spec });
      this.noteOverlay(name, info);
      return info;
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.noteOverlay(name, this.open.get(name), message);
      this.output.appendLine(`[client] overlay ${name}: ${message}`);
      throw err;
    }
  }

  dispose(): void {
    void this.client.stop().catch(() => undefined);
    this.output.dispose();
    this.stateEmitter.dispose();
    this.startedEmitter.dispose();
    this.writeEmitter.dispose();
    this.overlaysEmitter.dispose();
  }

  stop(): Promise<void> {
    return this.client.stop().catch(() => undefined);
  }
}

function sameSpec(a: StackSpec, b: StackSpec): boolean {
  return a.lower.join('\0') === b.lower.join('\0') && (a.upper ?? '') === (b.upper ?? '') && (a.work ?? '') === (b.work ?? '');
}
