/**
 * A store's data file read and damaged behind its owner's back, for the repair tests: page `id`
 * as it is on disk, and bytes of it XORed (bit rot, a flipped byte) at an offset into the page.
 */
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import path from 'node:path';

/** Page `id` of the store in `dir`, as on disk. */
export function diskPage(dir: string, id: number, pageSize = 4096): Buffer {
  const fd = openSync(path.join(dir, 'pages.db'), 'r');
  try {
    const b = Buffer.alloc(pageSize);
    readSync(fd, b, 0, pageSize, id * pageSize);
    return b;
  } finally {
    closeSync(fd);
  }
}

/** XORs `mask` (one byte, or several) into page `id` on disk at offset `at` of the page. */
export function xorOnDisk(dir: string, id: number, at: number, mask: number | readonly number[], pageSize = 4096): void {
  const m = typeof mask === 'number' ? [mask] : mask;
  const fd = openSync(path.join(dir, 'pages.db'), 'r+');
  try {
    const b = Buffer.alloc(m.length);
    readSync(fd, b, 0, m.length, id * pageSize + at);
    for (let i = 0; i < m.length; i++) b[i]! ^= m[i]!;
    writeSync(fd, b, 0, m.length, id * pageSize + at);
  } finally {
    closeSync(fd);
  }
}
