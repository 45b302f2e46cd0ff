/**
 * Is a store's disk usable right now? Two observations a retry can wait on (retry.ts): the
 * filesystem holding the store has at least `minFree` bytes free for us (statfs `bavail`), and
 * the disk takes a small write and its fsync in the store's directory (a dot-file created,
 * synced and removed at once). The probe is bounded: a disk that does not answer within
 * `timeoutMs` counts as failing, and no second probe of the same directory starts while the
 * first is still stuck in the kernel (a hung disk would otherwise pile them up).
 */
import { existsSync } from 'node:fs';
import { open, statfs, unlink } from 'node:fs/promises';
import path from 'node:path';
import { describeError } from '../../core/errors.js';

const PROBE_FILE = '.recovery-agent-disk-probe';
const PROBE = Buffer.alloc(4096, 0x52);
const inFlight = new Set<string>();

/** Why the disk of the store at `dir` is not usable now (for people), or null when it is. */
export async function diskProblem(dir: string, minFree: number, timeoutMs = 2000): Promise<string | null> {
  // A store not created yet (or moved away): its parent holds it, on the same filesystem.
  const where = existsSync(dir) ? dir : path.dirname(dir);
  try {
    const s = await statfs(where);
    const free = s.bavail * s.bsize;
    if (free < minFree) return `free space on the filesystem of ${where} (${formatBytes(free)} free, under ${formatBytes(minFree)})`;
  } catch (err) {
    return `the filesystem of ${where} answering statfs (${describeError(err)})`;
  }
  if (inFlight.has(where)) return `the disk of ${where} answering a write and fsync (the last probe has not returned)`;
  inFlight.add(where);
  const probe = writeAndSync(path.join(where, PROBE_FILE)).finally(() => inFlight.delete(where));
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(`no answer within ${timeoutMs} ms`), timeoutMs);
  });
  const failed = await Promise.race([probe.then(() => null, (err: unknown) => describeError(err)), timeout]).finally(() => clearTimeout(timer));
  return failed === null ? null : `the disk of ${where} answering a write and fsync (${failed})`;
}

async function writeAndSync(file: string): Promise<void> {
  const fh = await open(file, 'w', 0o600);
  try {
    await fh.write(PROBE, 0, PROBE.length, 0);
    await fh.sync();
  } finally {
    await fh.close().catch(() => undefined);
    await unlink(file).catch(() => undefined);
  }
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}
