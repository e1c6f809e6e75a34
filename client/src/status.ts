/** The status bar item: which overlays are open and whether the server runs. */
import * as vscode from 'vscode';
import type { OverlayClient, ServerState } from './client';

const ICON: Record<ServerState, string> = {
  starting: '$(sync~spin)',
  restarting: '$(sync~spin)',
  running: '$(layers)',
  stopped: '$(error)',
};

export class OverlayStatus implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('overlay.status', vscode.StatusBarAlignment.Left, 10);
  private readonly subscriptions: vscode.Disposable[] = [];

  constructor(private readonly server: OverlayClient) {
    this.item.name = 'Overlay';
    this.item.command = 'overlay.showStatus';
    this.subscriptions.push(
      server.onDidChangeState(() => this.update()),
      server.onDidStart(() => this.update()),
    );
    this.update();
  }

  update(): void {
    const names = [...this.server.overlays.keys()];
    const failed = [...this.server.failures.keys()];
    const state = this.server.state;
    this.item.text = `${ICON[state]} ${names.length ? names.join(', ') : 'Overlay'}${failed.length ? ` $(warning) ${failed.length}` : ''}`;
    const md = new vscode.MarkdownString(undefined, true);
    md.appendMarkdown(`**Overlay server:** ${state}${this.server.restartCount ? ` (restarted ${this.server.restartCount}×)` : ''}\n\n`);
    for (const info of this.server.overlays.values()) {
      md.appendMarkdown(
        `- \`${info.name}\`${info.readOnly ? ' (read-only)' : ''}: ${info.stack.lower.length} lower layer(s)${info.stack.upper ? `, upper \`${info.stack.upper}\`` : ''}\n`,
      );
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

/** "Overlay: Show Overlays": a quick pick of the open overlays and server actions. */
export async function showStatus(server: OverlayClient): Promise<void> {
  const items: (vscode.QuickPickItem & { run?: () => unknown })[] = [];
  for (const info of server.overlays.values()) {
    items.push({
      label: `$(layers) ${info.name}`,
      description: info.readOnly ? 'read-only' : undefined,
      detail: [info.stack.upper && `upper ${info.stack.upper}`, ...info.stack.lower.map((l, i) => `lower ${i} ${l}`)].filter(Boolean).join(' · '),
      run: () => vscode.commands.executeCommand('revealInExplorer', vscode.Uri.from({ scheme: 'overlay', authority: info.name, path: '/' })),
    });
  }
  for (const [name, message] of server.failures) items.push({ label: `$(warning) ${name}`, detail: message });
  items.push({ label: '$(output) Show Server Log', run: () => server.output.show() });
  items.push({ label: '$(debug-restart) Restart Server', run: () => vscode.commands.executeCommand('overlay.restartServer') });
  const picked = await vscode.window.showQuickPick(items, { title: `Overlay server: ${server.state}` });
  await picked?.run?.();
}
