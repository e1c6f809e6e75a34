/** The extension under test, as every e2e file reaches it: its real API type (client/src/api.ts). */
import * as assert from 'node:assert/strict';
import * as vscode from 'vscode';
import type { OverlayApi } from '../../../client/src/api';

export const EXTENSION_ID = 'overlay-workspaces.overlay-workspaces';

/** The extension's API, activated, once its server runs. */
export async function overlayApi(): Promise<OverlayApi> {
  const ext = vscode.extensions.getExtension<OverlayApi>(EXTENSION_ID);
  assert.ok(ext, `extension ${EXTENSION_ID} is not installed`);
  const api = await ext.activate();
  await api.server.whenRunning(30_000);
  return api;
}
