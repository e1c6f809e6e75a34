/**
 * Writes follow the kernel's security rules, the writer unprivileged (issue 14): uid/gid 65534
 * without capabilities writes a stack owned by 65534 (with some root-owned files in it). The
 * kernel reference runs as 65534 on a root mount; so do the engine, the server and the CLI
 * (test/kernel/privileges.ts). A writer without CAP_FSETID loses setuid, and setgid where
 * group-execute is set or the writer is not in the file's group; a root-owned file written by
 * 65534 keeps its owner; capabilities go on every data write.
 *
 * Known and left out: a copy-up WITHOUT a write of a file with capabilities. The kernel copies
 * security.capability with the mounter's credentials (root) and keeps it; an unprivileged
 * engine cannot set it (CAP_SETFCAP) and leaves the copy without it — fewer privileges, never
 * more. The root tier (test/kernel/privileges.test.ts) checks that copy-up keeps them.
 */
import { type Case } from '../kernel/privileges';
import { describeCases } from '../kernel/privilegeSuite';
import { NOBODY } from './helpers';

const CAP = 'cap_net_raw+ep';
const tool = (mode: number, extra: object = {}) => ({ path: 'tool', data: 'old\n', mode, ...extra });

const CASES: Case[] = [
  { name: 'setuid and setgid: dropped by a whole-file write', lower: [[tool(0o6755)]], ops: [{ kind: 'write', path: '/tool', data: 'new\n' }] },
  {
    name: 'setuid only: dropped by a whole-file write of an upper file',
    lower: [[]],
    upper: [tool(0o4755)],
    ops: [{ kind: 'write', path: '/tool', data: 'new\n' }],
  },
  { name: 'setuid and setgid: dropped by an append', lower: [[tool(0o6755)]], ops: [{ kind: 'append', path: '/tool', data: 'more\n' }] },
  { name: 'setuid and setgid: dropped by a truncate to 0', lower: [[tool(0o6755)]], ops: [{ kind: 'truncate', path: '/tool', size: 0 }] },
  { name: 'setuid and setgid: dropped by a truncate to the same size', lower: [[tool(0o6755)]], ops: [{ kind: 'truncate', path: '/tool', size: 4 }] },
  { name: 'setuid and setgid: dropped by a handle write', lower: [[tool(0o6755)]], ops: [{ kind: 'open', path: '/tool', data: 'x' }] },
  { name: 'setuid and setgid: kept when opened for writing and nothing written', lower: [[tool(0o6755)]], ops: [{ kind: 'open', path: '/tool' }] },
  { name: 'setuid and setgid: kept by chmod of the owner (copy-up only)', lower: [[tool(0o6755)]], ops: [{ kind: 'chmod', path: '/tool', mode: 0o6750 }] },
  { name: 'setuid and setgid: kept by rename (copy-up only)', lower: [[tool(0o6755)]], ops: [{ kind: 'rename', src: '/tool', dst: '/tool2' }] },
  {
    name: 'setgid without group-execute, the writer in the group: kept',
    lower: [[tool(0o2745)]],
    ops: [{ kind: 'write', path: '/tool', data: 'new\n' }],
  },
  {
    name: 'setgid without group-execute, the writer not in the group: dropped, group kept',
    lower: [[]],
    upper: [tool(0o2747, { owner: [65534, 0] })],
    ops: [{ kind: 'write', path: '/tool', data: 'new\n' }],
  },
  {
    name: 'a root-owned world-writable setuid file in the upper: setuid dropped, owner kept',
    lower: [[]],
    upper: [tool(0o6777, { owner: [0, 0] })],
    ops: [{ kind: 'write', path: '/tool', data: 'new\n' }],
  },
  {
    name: 'capabilities of a root-owned world-writable upper file: dropped, owner kept',
    lower: [[]],
    upper: [{ path: 'bin', data: 'old\n', mode: 0o777, owner: [0, 0], cap: CAP }],
    ops: [{ kind: 'write', path: '/bin', data: 'new\n' }],
  },
  {
    name: "capabilities of the writer's own lower file: dropped by a whole-file write",
    lower: [[{ path: 'bin', data: 'old\n', mode: 0o755, cap: CAP }]],
    ops: [{ kind: 'write', path: '/bin', data: 'new\n' }],
  },
  {
    name: 'hard links in the upper: a whole-file write reaches every name',
    lower: [[]],
    upper: [
      { path: 'x', data: 'old\n' },
      { path: 'd/y', link: 'x' },
    ],
    ops: [{ kind: 'write', path: '/d/y', data: 'new data\n' }],
  },
  {
    name: 'hard links in the upper: setuid dropped from the inode all names share',
    lower: [[]],
    upper: [tool(0o6755), { path: 'alias', link: 'tool' }],
    ops: [{ kind: 'write', path: '/alias', data: 'new\n' }],
  },
  {
    name: 'hard links across lower and upper: the written lower name is copied up alone',
    lower: [
      [
        { path: 'a', data: 'old\n', mode: 0o4755 },
        { path: 'b', link: 'a' },
      ],
    ],
    upper: [
      { path: 'c', data: 'upper\n' },
      { path: 'e', link: 'c' },
    ],
    ops: [
      { kind: 'write', path: '/a', data: 'A\n' },
      { kind: 'write', path: '/e', data: 'E\n' },
    ],
  },
  {
    name: 'rename onto an ancestor directory: ENOTEMPTY',
    lower: [[{ path: 'd/sub/f', data: 'x\n' }]],
    upper: [{ path: 'e/sub/g', data: 'y\n' }],
    ops: [
      { kind: 'rename', src: '/d/sub/f', dst: '/d' },
      { kind: 'rename', src: '/e/sub/g', dst: '/e' },
    ],
    without: {
      cli: "the CLI's mv is coreutils mv (into a directory, or refused before rename(2) with -T); its cases are in test/kernel/cliCases.test.ts",
      'cli-live': "the CLI's mv is coreutils mv (into a directory, or refused before rename(2) with -T); its cases are in test/kernel/cliCases.test.ts",
    },
  },
];

describeCases('writes follow the kernel security rules (unprivileged writer, uid 65534)', CASES, NOBODY);
