/**
 * Every message of the protocol, found by iterating protocol.ts itself: a message
 * declared there is in these lists, with nothing to keep in step by hand. The server
 * registers its handlers from `requests`, the client reads `changesOverlay` from the
 * definitions, the bad-request tests send every request, docs/protocol.md is printed
 * from both lists.
 */
import { isNotification, isRequest, type NotificationDef, type ParamsOf, type RequestDef, type ResultOf } from './messages';
import * as P from './protocol';

type Values = (typeof P)[keyof typeof P];

/* eslint-disable @typescript-eslint/no-explicit-any -- `any` here only selects the definitions among the module's values */
/** Every request definition, as a union of their types. */
export type AnyRequest = Extract<Values, RequestDef<string, any, any>>;
/** Every notification definition, as a union of their types. */
export type AnyNotification = Extract<Values, NotificationDef<string, any>>;
/* eslint-enable @typescript-eslint/no-explicit-any */

/**
 * One handler for each request, keyed by method: a request added to protocol.ts without
 * a handler, or with params or a result of another shape, does not compile.
 */
export type RequestHandlers = {
  [R in AnyRequest as R['method']]: (params: ParamsOf<R>) => Promise<ResultOf<R>> | ResultOf<R>;
};

export const requests: readonly AnyRequest[] = Object.values(P).filter((v): v is AnyRequest => isRequest(v));
export const notifications: readonly AnyNotification[] = Object.values(P).filter((v): v is AnyNotification => isNotification(v));
