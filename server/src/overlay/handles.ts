/** Open handles of an overlay: each remembers its overlay path, so reads follow copy-ups. */
import * as fs from 'node:fs';
import { createError } from './errors';
import { encodePath } from './names';

export interface OpenFlags {
  write?: boolean;
  create?: boolean;
  truncate?: boolean;
  exclusive?: boolean;
}

interface HandleInfo {
  path: string;
  real: string;
  ino: number;
  write: boolean;
  fd?: fs.promises.FileHandle;
}

export class Handles {
  private next = 1;
  private readonly map = new Map<number, HandleInfo>();

  open(path: string, real: string, ino: number, write: boolean): number {
    const h = this.next++;
    this.map.set(h, { path, real, ino, write });
    return h;
  }

  get(h: number, syscall: string): HandleInfo {
    const info = this.map.get(h);
    if (!info) throw createError('EBADF', syscall, String(h));
    return info;
  }

  async fd(h: number): Promise<fs.promises.FileHandle> {
    const info = this.get(h, 'read');
    if (!info.fd) {
      info.fd = await fs.promises.open(
        encodePath(info.real),
        (info.write ? fs.constants.O_RDWR : fs.constants.O_RDONLY) | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK,
      );
    }
    return info.fd;
  }

  async reopen(h: number, real: string, ino: number): Promise<void> {
    const info = this.get(h, 'read');
    const old = info.fd;
    info.fd = undefined;
    info.real = real;
    info.ino = ino;
    await old?.close();
  }

  async close(h: number): Promise<void> {
    const info = this.get(h, 'close');
    this.map.delete(h);
    await info.fd?.close();
  }

  async closeAll(): Promise<void> {
    for (const h of [...this.map.keys()]) await this.close(h);
  }

  get size(): number {
    return this.map.size;
  }
}
