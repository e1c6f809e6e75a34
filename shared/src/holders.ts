/**
 * How a process that still reads a stale copy is named to a user — in the extension's
 * notification and output channel, and in overlayws's warnings — said once here:
 * "nginx (pid 4211, container web) still reads the old copy of /etc/nginx/nginx.conf".
 */
import type { Holder } from './types';

/** `nginx (pid 4211, container web)`; a container Docker does not name shows its short id. */
export function holderLabel(h: Holder): string {
  const container = h.container ?? (h.containerId ? h.containerId.slice(0, 12) : undefined);
  return `${h.name} (pid ${h.pid}${container ? `, container ${container}` : ''})`;
}

/** One holder: `nginx (pid 4211, container web) still reads the old copy of /etc/nginx/nginx.conf`. */
export function staleReaderLine(h: Holder, path: string): string {
  return `${holderLabel(h)} still reads the old copy of ${path}`;
}

/** Several, in one sentence: the first `max` named, then how many more. */
export function staleReadersSentence(holders: readonly Holder[], path: string, max = 3): string {
  if (holders.length === 1) return staleReaderLine(holders[0], path);
  const named = holders.slice(0, max).map(holderLabel);
  const more = holders.length - named.length;
  const list = more > 0 ? `${named.join(', ')} and ${more} more` : `${named.slice(0, -1).join(', ')} and ${named[named.length - 1]}`;
  return `${list} still read the old copy of ${path}`;
}
