/**
 * The background scrub's progress for one store, persisted under `agent.dataDir` so that a
 * restarted agent resumes where it stopped instead of starting every pass over.
 *
 * File: `<dataDir>/scrub/<store id>.json`, replaced by write-then-rename (a crash leaves the old
 * or the new one, never half of each). Not fsynced: losing the last second of progress to a power
 * failure only means rescanning those pages. A file that cannot be read, or that describes
 * another geometry or path, is ignored and the scrub starts a fresh pass.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from '../../core/privateFiles.js';

export const SCRUB_STATE_VERSION = 1;
/** Suspect pages remembered across restarts, at most. */
export const MAX_PERSISTED_SUSPECTS = 4096;

export interface ScrubState {
  version: number;
  storeId: string;
  path: string;
  pageSize: number;
  pageCount: number;
  /** The next page the sequential pass reads. Equal to pageCount when the pass is complete. */
  nextPage: number;
  /** When the current (or last) pass started, ms since the epoch; 0 before the first. */
  passStartedAt: number;
  /** Passes completed since the state was created. */
  passes: number;
  lastPassCompletedAt: number;
  /** Wall time of the last complete pass, throttling and pauses included. */
  lastPassDurationMs: number;
  /** Pages to check before going on with the pass. */
  suspects: number[];
}

export function scrubStateFile(dataDir: string, storeId: string): string {
  return path.join(dataDir, 'scrub', `${storeId}.json`);
}

export function freshState(storeId: string, storePath: string, pageSize: number, pageCount: number): ScrubState {
  return { version: SCRUB_STATE_VERSION, storeId, path: storePath, pageSize, pageCount, nextPage: pageCount, passStartedAt: 0, passes: 0, lastPassCompletedAt: 0, lastPassDurationMs: 0, suspects: [] };
}

/** The saved state if it still describes this store, else null (with the reason, for the log). */
export async function loadScrubState(file: string, expect: { storeId: string; path: string; pageSize: number; pageCount: number }): Promise<{ state: ScrubState | null; note?: string }> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { state: null, ...(code === 'ENOENT' ? {} : { note: `cannot read ${file}: ${(err as Error).message}` }) };
  }
  const s = raw as Partial<ScrubState>;
  const ints = [s.nextPage, s.passStartedAt, s.passes, s.lastPassCompletedAt, s.lastPassDurationMs];
  if (s?.version !== SCRUB_STATE_VERSION || !ints.every((v) => typeof v === 'number' && Number.isFinite(v) && v >= 0) || !Array.isArray(s.suspects)) {
    return { state: null, note: `${file} is not a scrub state of version ${SCRUB_STATE_VERSION}; starting over` };
  }
  if (s.storeId !== expect.storeId || s.path !== expect.path || s.pageSize !== expect.pageSize || s.pageCount !== expect.pageCount) {
    return { state: null, note: `${file} describes ${s.path} with ${s.pageCount} pages of ${s.pageSize} bytes; the store is now ${expect.path} with ${expect.pageCount} of ${expect.pageSize}: starting over` };
  }
  const suspects = s.suspects.filter((p): p is number => Number.isInteger(p) && p >= 0 && p < expect.pageCount);
  return { state: { ...(s as ScrubState), nextPage: Math.min(s.nextPage!, expect.pageCount), suspects } };
}

export async function saveScrubState(file: string, state: ScrubState): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true, mode: PRIVATE_DIR_MODE });
  const tmp = `${file}.tmp`;
  const body = { ...state, suspects: state.suspects.slice(0, MAX_PERSISTED_SUSPECTS) };
  await writeFile(tmp, JSON.stringify(body) + '\n', { mode: PRIVATE_FILE_MODE });
  await rename(tmp, file);
}
