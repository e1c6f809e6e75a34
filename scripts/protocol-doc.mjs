#!/usr/bin/env node
// Writes docs/protocol.md from the protocol's own definitions (build first: tsc -b).
import { createRequire } from 'node:module';
import { writeFileSync } from 'node:fs';
const require = createRequire(import.meta.url);
const { renderProtocolDoc } = require('../out/shared/src/protocolDoc.js');
writeFileSync(new URL('../docs/protocol.md', import.meta.url), renderProtocolDoc());
console.log('docs/protocol.md written');
