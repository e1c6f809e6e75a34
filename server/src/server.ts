/**
 * The overlay server: the only file that creates the LSP connection. It owns the
 * stacks (named in initializationOptions.overlays, changed later by
 * overlay/addOverlay and overlay/removeOverlay) and answers the overlay/ protocol:
 * every request of shared/src/protocol.ts, its params checked by the request's own
 * check, its handler from handlers.ts, every failure mapped once (wireErrors.ts).
 * Started by the extension through vscode-languageclient (--node-ipc or --stdio).
 */
import { createConnection, ProposedFeatures, ResponseError, TextDocumentSyncKind } from 'vscode-languageserver/node';
import { requests } from '../../shared/src/catalog';
import { Configure, DidChangeFile, DidChangeMount, DidCopyUp, OVERLAY_ERROR, stackSpec } from '../../shared/src/protocol';
import { CopyUpNotices } from './copyUpNotices';
import { checkParams, type Check } from '../../shared/src/validate';
import { requestHandlers } from './handlers';
import { Registry } from './registry';
import { toWireError } from './wireErrors';

const connection = createConnection(ProposedFeatures.all);
const registry = new Registry();
registry.on('log', (msg) => connection.console.warn(msg));
registry.on('changes', (changes) => void connection.sendNotification(DidChangeFile.type, { changes }));
registry.on('mount', (e) => void connection.sendNotification(DidChangeMount.type, e));
const copyUps = new CopyUpNotices(
  (e) => void connection.sendNotification(DidCopyUp.type, e),
  (msg) => connection.console.warn(msg),
);
registry.on('copyup', (e, where) => copyUps.push(e, where));

const handlers = requestHandlers(registry, copyUps);
for (const r of requests) {
  const handler = handlers[r.method] as (params: unknown) => unknown;
  // By method, not r.type: with the type, vscode-jsonrpc answers missing params itself (InvalidParams) instead of the
  // overlay error every refusal is. It calls the handler with the params (spread when they came as a list) and a
  // cancellation token last.
  connection.onRequest(r.method, async (...args: unknown[]) => {
    const raw = args.length <= 1 ? undefined : args.length === 2 ? args[0] : args.slice(0, -1);
    copyUps.begin();
    try {
      return (await handler(checkParams(r.method, r.params as Check<unknown>, raw))) ?? null;
    } catch (err) {
      const { message, data } = toWireError(err);
      return new ResponseError(OVERLAY_ERROR, message, data);
    } finally {
      copyUps.end();
    }
  });
}

connection.onInitialize(async (params) => {
  // The mounts this server makes are held for the process that started it (mounting/mounts.ts);
  // those whose holders died (a crash of the window) are removed now.
  registry.setHolder(params.processId);
  await registry.mounts.cleanup().catch((err: unknown) => connection.console.error(`[mount] cleanup: ${String(err)}`));
  const init = params.initializationOptions as { overlays?: unknown; watchLowerLayers?: unknown; scanHolders?: unknown } | undefined;
  try {
    registry.watchLowerLayers = checkParams('initialize', Configure.params, { watchLowerLayers: init?.watchLowerLayers }).watchLowerLayers ?? 'auto';
  } catch (err) {
    connection.console.error(`initializationOptions.watchLowerLayers: ${toWireError(err).message}; "auto" it is`);
  }
  if (typeof init?.scanHolders === 'boolean') copyUps.scanHolders = init.scanHolders;
  const overlays: unknown = init?.overlays ?? {};
  if (typeof overlays !== 'object' || overlays === null || Array.isArray(overlays)) {
    connection.console.error('initializationOptions.overlays must be an object { name: stack spec }; no overlay opened');
  } else {
    // A stack that cannot be opened does not stop the others; the client sees it missing in overlay/list and the log.
    for (const [name, spec] of Object.entries(overlays)) {
      try {
        await registry.add(name, checkParams('initialize', stackSpec, spec));
      } catch (err) {
        connection.console.error(`overlay "${name}": ${toWireError(err).message}`);
      }
    }
  }
  return { capabilities: { textDocumentSync: TextDocumentSyncKind.None }, serverInfo: { name: 'overlay-server' } };
});

connection.onShutdown(() => registry.closeAll());
// The language server library exits on its own when the window's process dies or the connection
// closes (a reload can end the extension host before the shutdown reaches this server).
process.on('exit', () => registry.exitingNow());

process.on('uncaughtException', (err) => connection.console.error(`uncaught: ${err.stack ?? err.message}`));
process.on('unhandledRejection', (err) => connection.console.error(`unhandled rejection: ${String(err)}`));

connection.listen();
