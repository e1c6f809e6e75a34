/**
 * The overlay server: the only file that creates the LSP connection. It owns the
 * stacks (named in initializationOptions.overlays, changed later by
 * overlay/addOverlay and overlay/removeOverlay) and answers the overlay/ protocol.
 * Started by the extension through vscode-languageclient (--node-ipc or --stdio).
 */
import { createConnection, ProposedFeatures, ResponseError, TextDocumentSyncKind } from 'vscode-languageserver/node';
import { readStackSpec, registerHandlers } from './handlers';
import { Registry } from './overlays';
import { OVERLAY_ERROR } from '../../shared/src/protocol';
import { toWireError } from './wireErrors';

const connection = createConnection(ProposedFeatures.all);
const registry = new Registry();
registry.on('log', (msg) => connection.console.warn(msg));

registerHandlers(
  {
    on: (method, handler) =>
      connection.onRequest(method, async (params: unknown) => {
        try {
          return await handler(params);
        } catch (err) {
          const { message, data } = toWireError(err);
          return new ResponseError(OVERLAY_ERROR, message, data);
        }
      }),
    notify: (method, params) => void connection.sendNotification(method, params),
  },
  registry,
);

connection.onInitialize(async (params) => {
  const opts = params.initializationOptions as { overlays?: unknown } | undefined;
  let overlays = opts?.overlays;
  if (overlays !== undefined && (typeof overlays !== 'object' || overlays === null || Array.isArray(overlays))) {
    connection.console.error('initializationOptions.overlays must be an object { name: stack spec }; no overlay opened');
    overlays = {};
  }
  // A stack that cannot be opened does not stop the others; the client sees it missing in overlay/list and the log.
  for (const [name, spec] of Object.entries((overlays ?? {}) as Record<string, unknown>)) {
    try {
      await registry.add(name, readStackSpec('initialize', spec));
    } catch (err) {
      connection.console.error(`overlay "${name}": ${toWireError(err).message}`);
    }
  }
  return { capabilities: { textDocumentSync: TextDocumentSyncKind.None }, serverInfo: { name: 'overlay-server' } };
});

connection.onShutdown(() => registry.closeAll());

process.on('uncaughtException', (err) => connection.console.error(`uncaught: ${err.stack ?? err.message}`));
process.on('unhandledRejection', (err) => connection.console.error(`unhandled rejection: ${String(err)}`));

connection.listen();
