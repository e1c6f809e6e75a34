/** The status bar item: which overlays are open and whether the server runs. */
import * as vscode from 'vscode';
import type { OverlayInfo } from '../../shared/src/protocol';
import type { OverlayClient, ServerState } from './client';
import type { Locations } from './locations';
import type { MountedFolders } from './mountedFolders';

const ICON: Record<ServerState, string> = {
  starting: '$(sync~spin)',
  restarting: '$(sync~spin)',
  running: '$(layers)',
  stopped: '$(error)',
};

export class OverlayStatus implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('overlay.status', vscode.StatusBarAlignment.Left, 10);
  private readonly subscriptions: vscode.Disposable[] = [];

  constructor(
    private readonly server: OverlayClient,
    private readonly mounted: MountedFolders,
  ) {
    this.item.name = 'Overlay';
    this.item.command = 'overlay.showStatus';
    this.subscriptions.push(
      server.onDidChangeState(() => this.update()),
      server.onDidStart(() => this.update()),
      server.onDidChangeOverlays(() => this.update()),
      mounted.onDidSettle(() => this.update()),
    );
    this.update();
  }

  update(): void {
    const names = [...this.server.overlays.keys()];
    const failed = [...this.server.failures.keys()];
    const state = this.server.state;
    const label = (n: string) => {
      const m = this.server.overlays.get(n)?.mount;
      return m ? `${n} (${m.by === 'kernel' ? 'kernel mount' : 'fuse mount'})` : n;
    };
    this.item.text = `${ICON[state]} ${names.length ? names.map(label).join(', ') : 'Overlay'}${failed.length ? ` $(warning) ${failed.length}` : ''}`;
    const md = new vscode.MarkdownString(undefined, true);
    md.appendMarkdown(`**Overlay server:** ${state}${this.server.restartCount ? ` (restarted ${this.server.restartCount}×)` : ''}\n\n`);
    for (const info of this.server.overlays.values()) {
      md.appendMarkdown(
        `- \`${info.name}\`${info.readOnly ? ' (read-only)' : ''}: ${info.stack.lower.length} lower layer(s)${info.stack.upper ? `, upper \`${info.stack.upper}\`` : ''}\n`,
      );
      md.appendMarkdown(`  ${mountLine(info, this.mounted.failures.get(info.name))}\n`);
    }
    for (const [name, message] of this.server.failures) md.appendMarkdown(`- $(warning) \`${name}\`: ${message}\n`);
    this.item.tooltip = md;
    this.item.backgroundColor = state === 'stopped' || failed.length ? new vscode.ThemeColor('statusBarItem.errorBackground') : undefined;
    this.item.show();
  }

  dispose(): void {
    this.item.dispose();
    for (const s of this.subscriptions) s.dispose();
  }
}

/** How an overlay is open: which mount serves it and why, or why it is not mounted. */
export function mountLine(info: OverlayInfo, failure: string | undefined): string {
  if (info.mount)
    return `mounted at \`${info.mount.path}\` — ${info.mount.reason}${info.mount.adopted ? ' (shared with another window, or kept across a restart)' : ''}`;
  if (info.liveMount)
    return `mounted by someone else at \`${info.liveMount.merged}\`${info.liveMount.reachable ? '' : ' (not reachable from here)'}: writes go through it`;
  return failure ? `overlay:// — ${failure}` : 'overlay://';
}

/** "Overlay: Show Overlays": a quick pick of the open overlays and server actions. */
export async function showStatus(server: OverlayClient, locations: Locations): Promise<void> {
  const items: (vscode.QuickPickItem & { run?: () => unknown })[] = [];
  for (const info of server.overlays.values()) {
    items.push({
      label: `$(layers) ${info.name}`,
      description: [info.readOnly ? 'read-only' : '', info.mount ? `mounted (${info.mount.by})` : ''].filter(Boolean).join(', ') || undefined,
      detail: [info.stack.upper && `upper ${info.stack.upper}`, ...info.stack.lower.map((l, i) => `lower ${i} ${l}`)].filter(Boolean).join(' · '),
      // Its folder as the user works in it: overlay://NAME/, or the mounted directory.
      run: () => vscode.commands.executeCommand('revealInExplorer', locations.workingUri(info.name, '/')),
    });
  }
  for (const [name, message] of server.failures) items.push({ label: `$(warning) ${name}`, detail: message });
  items.push({ label: '$(output) Show Server Log', run: () => server.output.show() });
  items.push({ label: '$(debug-restart) Restart Server', run: () => vscode.commands.executeCommand('overlay.restartServer') });
  const picked = await vscode.window.showQuickPick(items, { title: `Overlay server: ${server.state}` });
  await picked?.run?.();
}
