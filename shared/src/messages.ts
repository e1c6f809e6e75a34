/**
 * What a protocol message is, said once where it is declared: its method, who sends it
 * (vscode-languageserver-node's `messageDirection`), whether it may change what an
 * overlay shows, the runtime check of its params and one line of documentation. The
 * client, the server, the tests and docs/protocol.md iterate these instead of keeping
 * lists of methods by hand (see catalog.ts).
 */
import { NotificationType, RequestType, RequestType0 } from 'vscode-jsonrpc';
import { absent, type Check } from './validate';

export type MessageDirection = 'clientToServer' | 'serverToClient';

declare const resultBrand: unique symbol;
/** The result type of a request, carried in the type only. */
export interface Returns<R> {
  readonly [resultBrand]?: R;
}
export function returns<R>(): Returns<R> {
  return {};
}

export interface RequestDef<M extends string = string, P = unknown, R = unknown> {
  readonly kind: 'request';
  readonly method: M;
  readonly messageDirection: 'clientToServer';
  /** May change what an overlay shows: the client drops listings it read ahead when it sends one. */
  readonly changesOverlay: boolean;
  /** Checks untrusted params; throws a ParamError (EINVAL) naming the field. */
  readonly params: Check<P>;
  /** For vscode-jsonrpc's sendRequest/onRequest; a request without params (P = undefined) has a RequestType0. */
  readonly type: JsonRpcType<P, R>;
  /** One line for docs/protocol.md. */
  readonly doc: string;
}

export type JsonRpcType<P, R> = [P] extends [undefined] ? RequestType0<R, void> : RequestType<P, R, void>;

export interface NotificationDef<M extends string = string, P = unknown> {
  readonly kind: 'notification';
  readonly method: M;
  readonly messageDirection: 'serverToClient';
  readonly type: NotificationType<P>;
  readonly doc: string;
}

export type ParamsOf<D> = D extends RequestDef<string, infer P, unknown> ? P : D extends NotificationDef<string, infer P> ? P : never;
export type ResultOf<D> = D extends RequestDef<string, unknown, infer R> ? R : never;

/** A request the client sends to the server. */
export function request<M extends string, P, R>(
  method: M,
  def: { doc: string; changesOverlay: boolean; params: Check<P>; result: Returns<R> },
): RequestDef<M, P, R> {
  return {
    kind: 'request',
    method,
    messageDirection: 'clientToServer',
    changesOverlay: def.changesOverlay,
    params: def.params,
    type: new RequestType<P, R, void>(method) as JsonRpcType<P, R>,
    doc: def.doc,
  };
}

/** A request the client sends to the server, without params. */
export function request0<M extends string, R>(method: M, def: { doc: string; changesOverlay: boolean; result: Returns<R> }): RequestDef<M, undefined, R> {
  return {
    kind: 'request',
    method,
    messageDirection: 'clientToServer',
    changesOverlay: def.changesOverlay,
    params: absent,
    type: new RequestType0<R, void>(method) as JsonRpcType<undefined, R>,
    doc: def.doc,
  };
}

/** A notification the server sends to the client. */
export function notification<M extends string, P>(method: M, def: { doc: string; params: Returns<P> }): NotificationDef<M, P> {
  return { kind: 'notification', method, messageDirection: 'serverToClient', type: new NotificationType<P>(method), doc: def.doc };
}

export function isRequest(v: unknown): v is RequestDef {
  return typeof v === 'object' && v !== null && (v as { kind?: unknown }).kind === 'request';
}

export function isNotification(v: unknown): v is NotificationDef {
  return typeof v === 'object' && v !== null && (v as { kind?: unknown }).kind === 'notification';
}
