/**
 * The control file (`control`): where the last complete checkpoint is. Replaced atomically
 * (write a temporary file, fdatasync, rename, fsync the directory), so a crash leaves either the
 * old or the new one, never half of each. 72 bytes, little-endian:
 *
 *   0 u32 magic  4 u16 version  6 u16 reserved
 *   8 u64 checkpoint LSN (the checkpoint record)   16 u64 redo LSN (where redo starts)
 *  24 u64 next transaction id
 *  32 u32 page size  36 u32 page count  40 u32 WAL segment size  44 u32 reserved
 *  48 16 bytes store id
 *  64 u64 XXH3-64 of bytes [0, 64)
 */
import { readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import { xxh3 } from 'recovery-agent/native';
import { raError } from '../../core/errors.js';
import { openPrivate } from '../../core/privateFiles.js';
import { readU64, writeU64 } from './format.js';
import { fsyncDir } from '../../core/fsyncDir.js';
import { writeAll } from '../../core/writeAll.js';

export const CONTROL_MAGIC = 0x54434152; // "RACT"
export const CONTROL_VERSION = 1;
export const CONTROL_SIZE = 72;

export interface Control {
  checkpointLsn: number;
  redoLsn: number;
  nextTxId: number;
  pageSize: number;
  pageCount: number;
  segmentSize: number;
  storeId: Uint8Array;
}

export function encodeControl(c: Control): Buffer {
  const b = Buffer.alloc(CONTROL_SIZE);
  b.writeUInt32LE(CONTROL_MAGIC, 0);
  b.writeUInt16LE(CONTROL_VERSION, 4);
  writeU64(b, 8, c.checkpointLsn);
  writeU64(b, 16, c.redoLsn);
  writeU64(b, 24, c.nextTxId);
  b.writeUInt32LE(c.pageSize, 32);
  b.writeUInt32LE(c.pageCount, 36);
  b.writeUInt32LE(c.segmentSize, 40);
  b.set(c.storeId, 48);
  b.writeBigUInt64LE(xxh3(b.subarray(0, 64)), 64);
  return b;
}

export async function readControl(dir: string): Promise<Control> {
  const file = path.join(dir, 'control');
  let b: Buffer;
  try {
    b = await readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'RA_ERR_STORE_NOT_FOUND' : 'RA_ERR_STORE_INVALID';
    throw raError(code, `${dir} is not a page store: cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  if (b.byteLength !== CONTROL_SIZE || b.readBigUInt64LE(64) !== xxh3(b.subarray(0, 64)) || b.readUInt32LE(0) !== CONTROL_MAGIC) {
    throw raError('RA_ERR_STORE_INVALID', `${file} is damaged (size ${b.byteLength}, expected ${CONTROL_SIZE}, or checksum mismatch)`);
  }
  if (b.readUInt16LE(4) !== CONTROL_VERSION) {
    throw raError('RA_ERR_STORE_INVALID', `${file} has format version ${b.readUInt16LE(4)}; this agent reads version ${CONTROL_VERSION}`);
  }
  return {
    checkpointLsn: readU64(b, 8),
    redoLsn: readU64(b, 16),
    nextTxId: readU64(b, 24),
    pageSize: b.readUInt32LE(32),
    pageCount: b.readUInt32LE(36),
    segmentSize: b.readUInt32LE(40),
    storeId: Uint8Array.from(b.subarray(48, 64)),
  };
}

/** Replaces the control file atomically and durably. */
export async function writeControl(dir: string, c: Control): Promise<void> {
  const tmp = path.join(dir, 'control.tmp');
  const h = await openPrivate(tmp, 'w');
  try {
    await writeAll(h, encodeControl(c), 0);
    await h.datasync();
  } finally {
    await h.close();
  }
  await rename(tmp, path.join(dir, 'control'));
  await fsyncDir(dir);
}
