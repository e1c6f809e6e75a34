/**
 * Kernel overlay mounts: parsed from /proc/self/mountinfo, and the mounted overlays that
 * are open as plain folders. For those the server gets the stack too (not saved in the
 * settings): its watcher then reports copy-ups the kernel makes, and editors on a lower
 * real path move to the merged path (staleEditors.ts).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { StackSpec } from '../../shared/src/protocol';
import type { OverlayClient } from './client';

/** Overlay mounts in /proc/self/mountinfo: mount point and options. */
export function overlayMounts(mountinfo = '/proc/self/mountinfo'): { merged: string; spec: StackSpec }[] {
  let text: string;
  try {
    text = fs.readFileSync(mountinfo, 'utf8');
  } catch {
    return [];
  }
  const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  const out: { merged: string; spec: StackSpec }[] = [];
  for (const line of text.split('\n')) {
    const [pre, post] = line.split(' - ');
    if (!post) continue;
    const [fstype, , superOpts] = post.split(' ');
    if (fstype !== 'overlay') continue;
    const merged = unescape(pre.split(' ')[4]);
    const lower: string[] = [];
    const spec: StackSpec = { lower, merged };
    for (const opt of (superOpts ?? '').split(',')) {
      const [k, v = ''] = opt.split(/=(.*)/s);
      if (k === 'lowerdir')
        lower.push(
          ...v
            .split(/(?<!\\):/)
            .filter((d) => d && !d.startsWith(':'))
            .map((d) => unescape(d.replace(/\\:/g, ':'))),
        );
      else if (k === 'lowerdir+') lower.push(unescape(v));
      else if (k === 'upperdir') spec.upper = unescape(v);
      else if (k === 'workdir') spec.work = unescape(v);
      else if (k === 'userxattr') spec.userxattr = true;
    }
    if (lower.length) out.push({ merged, spec: { ...spec, whiteouts: 'kernel' } });
  }
  return out;
}

/** Mounted overlays that contain a file: workspace folder, as ephemeral overlays on the server. */
export function trackMountedFolders(server: OverlayClient): vscode.Disposable {
  const update = async () => {
    const folders = (vscode.workspace.workspaceFolders ?? []).filter((f) => f.uri.scheme === 'file').map((f) => f.uri.fsPath);
    const wanted = new Map<string, StackSpec>();
    if (folders.length) {
      for (const m of overlayMounts()) {
        if (!m.spec.upper) continue;
        if (folders.some((f) => f === m.merged || f.startsWith(`${m.merged}${path.sep}`))) {
          wanted.set(`mounted-${path.basename(m.merged).replace(/[^A-Za-z0-9.-]+/g, '-') || 'root'}`, m.spec);
        }
      }
    }
    await server.setEphemeral(wanted);
  };
  const run = () => void update().catch((err: unknown) => server.output.warn(`[mounts] ${String(err)}`));
  const subs = [vscode.workspace.onDidChangeWorkspaceFolders(run), server.onDidStart(run)];
  run();
  return vscode.Disposable.from(...subs);
}
