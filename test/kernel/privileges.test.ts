/**
 * Writes follow the kernel's security rules, the writer root (issue 14): file capabilities are
 * dropped by every data write and kept by a copy-up alone; setuid/setgid survive a root writer
 * (CAP_FSETID); hard links in the upper keep sharing one inode through whole-file writes, and a
 * multiply-linked lower file is copied up alone; a rename onto an ancestor answers ENOTEMPTY.
 * Each case against a kernel mount, through the engine, the server, the CLI and a live mount
 * (privileges.ts). The unprivileged writer: test/safety/writerPrivileges.test.ts.
 */
import { type Case } from './privileges';
import { describeCases } from './privilegeSuite';

const CAP = 'cap_net_raw+ep';
const bin = (extra: object = {}) => ({ path: 'bin', data: 'old\n', mode: 0o755, cap: CAP, ...extra });

const CASES: Case[] = [
  { name: 'capabilities: a lower file written whole are dropped', lower: [[bin()]], ops: [{ kind: 'write', path: '/bin', data: 'new\n' }] },
  { name: 'capabilities: an upper file written whole are dropped', lower: [[]], upper: [bin()], ops: [{ kind: 'write', path: '/bin', data: 'new\n' }] },
  { name: 'capabilities: appended to are dropped', lower: [[bin()]], ops: [{ kind: 'append', path: '/bin', data: 'more\n' }] },
  { name: 'capabilities: truncated to 0 are dropped', lower: [[bin()]], ops: [{ kind: 'truncate', path: '/bin', size: 0 }] },
  { name: 'capabilities: truncated to the same size are dropped', lower: [[bin()]], ops: [{ kind: 'truncate', path: '/bin', size: 4 }] },
  { name: 'capabilities: written through a handle are dropped', lower: [[bin()]], ops: [{ kind: 'open', path: '/bin', data: 'x' }] },
  { name: 'capabilities: opened for writing, nothing written, are kept (copy-up only)', lower: [[bin()]], ops: [{ kind: 'open', path: '/bin' }] },
  { name: 'capabilities: chmod keeps them (copy-up only)', lower: [[bin()]], ops: [{ kind: 'chmod', path: '/bin', mode: 0o750 }] },
  { name: 'capabilities: rename keeps them (copy-up only)', lower: [[bin()]], ops: [{ kind: 'rename', src: '/bin', dst: '/bin2' }] },
  {
    name: 'setuid and setgid: kept by a root writer (CAP_FSETID) of a whole file, capabilities dropped',
    lower: [[{ path: 'tool', data: 'old\n', mode: 0o6755, owner: [65534, 65534], cap: CAP }]],
    ops: [{ kind: 'write', path: '/tool', data: 'new\n' }],
  },
  {
    name: 'setuid and setgid: kept by a root writer (CAP_FSETID) appending, capabilities dropped',
    lower: [[{ path: 'tool', data: 'old\n', mode: 0o6755, owner: [65534, 65534], cap: CAP }]],
    ops: [{ kind: 'append', path: '/tool', data: 'more\n' }],
  },
  {
    name: 'hard links in the upper: a whole-file write reaches every name',
    lower: [[]],
    upper: [
      { path: 'x', data: 'old\n' },
      { path: 'd/y', link: 'x' },
    ],
    ops: [{ kind: 'write', path: '/x', data: 'new data\n' }],
  },
  {
    name: 'hard links in the upper: appends, truncates and handle writes reach every name',
    lower: [[]],
    upper: [
      { path: 'x', data: 'old\n' },
      { path: 'y', link: 'x' },
    ],
    ops: [
      { kind: 'append', path: '/x', data: 'more\n' },
      { kind: 'truncate', path: '/y', size: 0 },
      { kind: 'open', path: '/y', data: 'via handle\n' },
    ],
  },
  {
    name: 'hard links in the upper with setuid and capabilities: the write drops the capabilities from the shared inode',
    lower: [[]],
    upper: [
      { path: 'x', data: 'old\n', mode: 0o4755, cap: CAP },
      { path: 'y', link: 'x' },
    ],
    ops: [{ kind: 'write', path: '/y', data: 'new\n' }],
  },
  {
    name: 'hard links in a lower layer: the written name is copied up alone',
    lower: [
      [
        { path: 'a', data: 'old\n' },
        { path: 'b', link: 'a' },
      ],
    ],
    ops: [{ kind: 'write', path: '/a', data: 'new\n' }],
  },
  {
    name: 'hard links across lower and upper: each name written is copied up as a file of its own',
    lower: [
      [
        { path: 'a', data: 'old\n' },
        { path: 'b', link: 'a' },
      ],
    ],
    upper: [
      { path: 'c', data: 'upper\n' },
      { path: 'e', link: 'c' },
    ],
    ops: [
      { kind: 'write', path: '/a', data: 'A\n' },
      { kind: 'append', path: '/b', data: 'B\n' },
      { kind: 'write', path: '/c', data: 'C\n' },
    ],
  },
  {
    name: 'user xattrs: kept by a whole-file write',
    lower: [[{ path: 'f', data: 'old\n', xattrs: { 'user.note': 'kept' } }]],
    upper: [{ path: 'g', data: 'old\n', xattrs: { 'user.note': 'kept too' } }],
    ops: [
      { kind: 'write', path: '/f', data: 'new\n' },
      { kind: 'write', path: '/g', data: 'new\n' },
    ],
  },
  {
    name: 'rename onto an ancestor directory: ENOTEMPTY',
    lower: [[{ path: 'd/sub/f', data: 'x\n' }]],
    upper: [{ path: 'e/sub/g', data: 'y\n' }],
    ops: [
      { kind: 'rename', src: '/d/sub/f', dst: '/d' },
      { kind: 'rename', src: '/d/sub/f', dst: '/d/sub' },
      { kind: 'rename', src: '/e/sub/g', dst: '/e' },
      { kind: 'rename', src: '/e/sub', dst: '/e' },
    ],
    without: {
      cli: "the CLI's mv is coreutils mv (into a directory, or refused before rename(2) with -T); its cases are in test/kernel/cliCases.test.ts",
      'cli-live': "the CLI's mv is coreutils mv (into a directory, or refused before rename(2) with -T); its cases are in test/kernel/cliCases.test.ts",
    },
  },
];

describeCases('writes follow the kernel security rules (root writer)', CASES, undefined);
