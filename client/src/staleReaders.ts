/**
 * The consistency rule beyond the editor: after a copy-up, the processes that still read
 * the old copy (the server names them in overlay/didCopyUp `holders`: they hold the lower
 * file open or mapped, or a container's / the stack's own kernel mount's file as it was) are
 * told to the user. One notification per copy-up that has holders other than this VS Code's
 * own processes — "nginx (pid 4211, container web) still reads the old copy of
 * /etc/nginx/nginx.conf" — with Show Processes, Send SIGHUP, and Restart Container where
 * Docker named a container. The output channel logs every case, whatever
 * `overlay.staleReaders` says (`notify`, the default; `log`: no notification; `off`: the
 * server does not look at all).
 */
import * as vscode from 'vscode';
import { holderLabel, staleReadersSentence } from '../../shared/src/holders';
import { Configure, DidCopyUp, type Holder } from '../../shared/src/protocol';
import type { OverlayClient } from './client';
import { staleReadersSetting } from './config';
import { hangUp, ownProcesses, restartContainer, type HangupOutcome } from './processes';
import type { Testing } from './testing';

/** One copy-up whose old copy is still read, as the user is told of it. */
export interface StaleReaderNotice {
  readonly overlay: string;
  readonly path: string;
  readonly lowerPath: string;
  readonly by: 'server' | 'outside';
  /** The holders that are not this VS Code's own processes. */
  readonly holders: readonly Holder[];
  /** Pids of this VS Code's own processes among the holders (left out of the notification). */
  readonly own: readonly number[];
  readonly uninspectable: number;
  /** The notification's text, when one was shown. */
  readonly message?: string;
}

export type StaleReaderAction = 'show' | 'sighup' | 'restart';

/** What an action did, for the status log and the e2e suite. */
export interface StaleReaderActionRecord {
  readonly path: string;
  readonly action: StaleReaderAction;
  /** SIGHUP: outcome by pid; restart: Docker's error by container ('' when done). */
  readonly results: Readonly<Record<string, string>>;
}

const SHOW = 'Show Processes';
const SIGHUP = 'Send SIGHUP';
const RESTART = 'Restart Container';

export class StaleReaders implements vscode.Disposable {
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    private readonly server: OverlayClient,
    private readonly output: vscode.LogOutputChannel,
    private readonly testing: Testing,
  ) {
    server.onNotification(DidCopyUp.type, (e) => this.onCopyUp(e));
    this.disposables.push(
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (!e.affectsConfiguration('overlay.staleReaders') || server.state !== 'running') return;
        void server
          .request(Configure, { scanHolders: staleReadersSetting() !== 'off' })
          .catch((err: unknown) => this.output.appendLine(`[stale readers] could not tell the server: ${String(err)}`));
      }),
    );
  }

  onCopyUp(e: DidCopyUp.Params): void {
    if (!e.holders) return; // the server does not look (overlay.staleReaders off)
    const uninspectable = e.uninspectable ?? 0;
    if (e.holders.length === 0) {
      if (uninspectable > 0) this.output.debug(`[stale readers] ${e.path}: no process of ours holds the old copy; ${uninspectable} could not be inspected`);
      return;
    }
    const own = ownProcesses(this.server.pid);
    const others = e.holders.filter((h) => !own.has(h.pid));
    const mine = e.holders.filter((h) => own.has(h.pid)).map((h) => h.pid);
    const setting = staleReadersSetting();
    const message = others.length > 0 && setting === 'notify' ? staleReadersSentence(others, e.path) : undefined;
    const notice: StaleReaderNotice = { overlay: e.name, path: e.path, lowerPath: e.lowerPath, by: e.by, holders: others, own: mine, uninspectable, message };
    this.log(notice);
    this.testing.staleReaders.push(notice);
    if (message) void this.notify(notice, message);
  }

  private log(n: StaleReaderNotice): void {
    const lines = [
      `[stale readers] ${n.path} (overlay ${n.overlay}) was copied up (${n.by === 'server' ? 'by this window' : 'by another process'}); the old copy is ${n.lowerPath}`,
      ...n.holders.map((h) => `  ${holderLabel(h)} still reads it (${h.how}), uid ${h.uid}: ${h.command}`),
    ];
    if (n.own.length > 0) lines.push(`  this VS Code's own processes (not notified): ${n.own.map((p) => `pid ${p}`).join(', ')}`);
    if (n.uninspectable > 0) lines.push(`  ${n.uninspectable} process(es) could not be inspected and may hold it too`);
    this.output.info(lines.join('\n'));
  }

  private async notify(n: StaleReaderNotice, message: string): Promise<void> {
    const actions = [SHOW, SIGHUP, ...(n.holders.some((h) => h.container) ? [RESTART] : [])];
    const choice = await vscode.window.showWarningMessage(message, ...actions);
    if (choice === SHOW) await this.act(n, 'show');
    else if (choice === SIGHUP) await this.act(n, 'sighup');
    else if (choice === RESTART) await this.act(n, 'restart');
  }

  /** The notification's actions (its buttons, or the e2e suite), on all its holders or those of `pids`. */
  async act(n: StaleReaderNotice, action: StaleReaderAction, pids?: readonly number[]): Promise<StaleReaderActionRecord | undefined> {
    const holders = pids ? n.holders.filter((h) => pids.includes(h.pid)) : n.holders;
    if (action === 'show') return this.show(n);
    const results = action === 'sighup' ? await this.hangUpAll(n, holders) : await this.restartAll(n, holders);
    if (!results) return undefined;
    const record: StaleReaderActionRecord = { path: n.path, action, results };
    this.testing.staleReaderActions.push(record);
    return record;
  }

  /** A quick pick of the processes; picking one offers what to do with it. */
  private async show(n: StaleReaderNotice): Promise<undefined> {
    const picked = await vscode.window.showQuickPick(
      n.holders.map((h) => ({
        label: `$(pulse) ${h.name}`,
        description: [`pid ${h.pid}`, h.how, h.container ? `container ${h.container}` : undefined, `uid ${h.uid}`].filter(Boolean).join(' · '),
        detail: h.command,
        holder: h,
      })),
      { title: `Processes that still read the old copy of ${n.path}`, matchOnDescription: true, matchOnDetail: true },
    );
    if (!picked) return undefined;
    const h = picked.holder;
    const what = await vscode.window.showQuickPick([`Send SIGHUP to ${holderLabel(h)}`, ...(h.container ? [`Restart container ${h.container}`] : [])], {
      title: holderLabel(h),
    });
    if (what?.startsWith('Send')) await this.act(n, 'sighup', [h.pid]);
    else if (what?.startsWith('Restart')) await this.act(n, 'restart', [h.pid]);
    return undefined;
  }

  private async confirm(message: string, button: string): Promise<boolean> {
    if (this.testing.autoConfirm) return true;
    return (await vscode.window.showWarningMessage(message, { modal: true }, button)) === button;
  }

  private async hangUpAll(n: StaleReaderNotice, holders: readonly Holder[]): Promise<Record<string, HangupOutcome> | undefined> {
    const names = holders.map(holderLabel).join(', ');
    if (!(await this.confirm(`Send SIGHUP to ${names}? Many servers reload their configuration on SIGHUP; a process that does not handle it ends.`, SIGHUP)))
      return undefined;
    const results: Record<string, HangupOutcome> = {};
    for (const h of holders) results[h.pid] = hangUp(h);
    const by = (o: HangupOutcome) => holders.filter((h) => results[h.pid] === o).map(holderLabel);
    const parts = [
      by('sent').length ? `SIGHUP sent to ${by('sent').join(', ')}.` : '',
      by('not permitted').length
        ? `Refused for ${by('not permitted').join(', ')}: not permitted to signal ${by('not permitted').length > 1 ? 'them' : 'it'}.`
        : '',
      by('gone').length ? `${by('gone').join(', ')} ended meanwhile.` : '',
    ].filter(Boolean);
    this.output.info(`[stale readers] ${n.path}: ${parts.join(' ')}`);
    if (by('not permitted').length > 0) void vscode.window.showWarningMessage(parts.join(' '));
    else void vscode.window.showInformationMessage(parts.join(' '));
    return results;
  }

  private async restartAll(n: StaleReaderNotice, holders: readonly Holder[]): Promise<Record<string, string> | undefined> {
    const containers = [...new Set(holders.map((h) => h.container).filter((c): c is string => c !== undefined))];
    if (containers.length === 0) {
      void vscode.window.showInformationMessage(`No container that Docker names holds the old copy of ${n.path}.`);
      return undefined;
    }
    const list = containers.join(', ');
    if (!(await this.confirm(`Restart container${containers.length > 1 ? 's' : ''} ${list}? Its processes stop and start again.`, RESTART))) return undefined;
    const results: Record<string, string> = {};
    await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `Restarting ${list}…` }, async () => {
      for (const c of containers) results[c] = (await restartContainer(c)) ?? '';
    });
    const failed = containers.filter((c) => results[c] !== '');
    const done = containers.filter((c) => results[c] === '');
    this.output.info(
      `[stale readers] ${n.path}: ${containers.map((c) => (results[c] ? `docker restart ${c} failed: ${results[c]}` : `restarted ${c}`)).join('; ')}`,
    );
    if (failed.length > 0) void vscode.window.showErrorMessage(`docker restart ${failed.map((c) => `${c}: ${results[c]}`).join('; ')}`);
    if (done.length > 0) void vscode.window.showInformationMessage(`Restarted container${done.length > 1 ? 's' : ''} ${done.join(', ')}.`);
    return results;
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}
