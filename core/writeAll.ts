/**
 * Writes that write every byte or fail.
 *
 * Node's `FileHandle.write`/`writev` and `fs.writeSync` resolve with the count the kernel
 * took, and on a filling disk that count is short: `pwritev` returns 20896 of 65536, and only
 * the *next* call fails with ENOSPC. A caller that ignores the count and fdatasyncs believes
 * bytes are durable that were never written (a WAL that acknowledged commits it lost). Every
 * write of stored data in the project goes through these functions.
 *
 * A short write is continued from where it stopped; the kernel then either takes the rest or
 * reports the error. A write that takes nothing and reports nothing is refused with EIO, so a
 * broken file system cannot make these loop.
 */
import { writeSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';

function noProgress(what: string, position: number, left: number): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error(`${what} wrote 0 of ${left} bytes at offset ${position}`);
  err.code = 'EIO';
  return err;
}

/** Writes all of `data` at `position`; throws when any byte could not be written. */
export async function writeAll(h: FileHandle, data: Uint8Array, position: number): Promise<void> {
  for (let done = 0; done < data.byteLength; ) {
    const { bytesWritten } = await h.write(data, done, data.byteLength - done, position + done);
    if (bytesWritten <= 0) throw noProgress('write', position + done, data.byteLength - done);
    done += bytesWritten;
  }
}

/** Writes `pieces` back to back from `position`; throws when any byte could not be written. */
export async function writevAll(h: FileHandle, pieces: readonly Uint8Array[], position: number): Promise<void> {
  let rest = pieces.filter((p) => p.byteLength > 0);
  let pos = position;
  while (rest.length > 0) {
    let { bytesWritten } = await h.writev(rest, pos);
    if (bytesWritten <= 0) throw noProgress('writev', pos, rest.reduce((n, p) => n + p.byteLength, 0));
    pos += bytesWritten;
    // Drop the pieces written whole; the first one left may be written in part.
    let i = 0;
    while (i < rest.length && bytesWritten >= rest[i]!.byteLength) bytesWritten -= rest[i++]!.byteLength;
    rest = rest.slice(i);
    if (rest.length > 0 && bytesWritten > 0) rest[0] = rest[0]!.subarray(bytesWritten);
  }
}

/** `writeSync` of all of `data` (at `position`, or at the file offset when it is null). */
export function writeAllSync(fd: number, data: Uint8Array, position: number | null = null): void {
  for (let done = 0; done < data.byteLength; ) {
    const n = writeSync(fd, data, done, data.byteLength - done, position === null ? null : position + done);
    if (n <= 0) throw noProgress('write', (position ?? 0) + done, data.byteLength - done);
    done += n;
  }
}
