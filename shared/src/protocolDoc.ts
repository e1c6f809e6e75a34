/**
 * docs/protocol.md, printed from the catalog (`npm run docs:protocol` writes it; a unit
 * test fails when the file and the protocol disagree).
 */
import { notifications, requests } from './catalog';

export function renderProtocolDoc(): string {
  const lines = [
    '# The overlay protocol',
    '',
    'Every custom message between the extension (client) and the overlay server, printed from',
    '`shared/src/protocol.ts` by `npm run docs:protocol` — do not edit by hand. Paths are overlay',
    "paths, absolute from the overlay's root; failures answer a ResponseError with code",
    '`-32803` and `data.code` a Node error code (`ENOENT`, `EINVAL`, ...).',
    '',
    '## Requests (client → server)',
    '',
    '| method | changes an overlay | what it does |',
    '|---|---|---|',
    ...[...requests].sort((a, b) => a.method.localeCompare(b.method)).map((r) => `| \`${r.method}\` | ${r.changesOverlay ? 'yes' : 'no'} | ${r.doc} |`),
    '',
    '## Notifications (server → client)',
    '',
    '| method | what it says |',
    '|---|---|',
    ...[...notifications].sort((a, b) => a.method.localeCompare(b.method)).map((n) => `| \`${n.method}\` | ${n.doc} |`),
    '',
  ];
  return lines.join('\n');
}
