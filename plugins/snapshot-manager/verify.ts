/**
 * `snapshot verify`: every manifest's checksum; every chunk read, checked, decompressed and
 * checked again, every page in it verified (checksum, header, page id where the manifest puts
 * it); every WAL copy and archived segment likewise; every incremental's base present. Names
 * each problem; nothing is changed.
 */
import path from 'node:path';
import type { PageEngine } from '../../core/contracts/PageEngine.js';
import { raError } from '../../core/errors.js';
import { archiveDirOf, loadAll, snapshotPath, type FileEntry } from './manifest.js';
import { listArchive, readRaw } from './walArchive.js';

export interface VerifyProblem {
  /** Snapshot id, or "wal-archive". */
  where: string;
  file?: string;
  pageId?: number;
  problem: string;
}

export interface VerifyResult {
  snapshots: number;
  chunks: number;
  pages: number;
  walFiles: number;
  bytes: number;
  problems: VerifyProblem[];
}

/** Verifies the snapshot directory `dir` of a store of `engine` (which checks its pages and WAL). */
export async function verifySnapshots(engine: PageEngine, dir: string, onProgress?: (done: number, total: number) => void): Promise<VerifyResult> {
  const r: VerifyResult = { snapshots: 0, chunks: 0, pages: 0, walFiles: 0, bytes: 0, problems: [] };
  const all = await loadAll(dir);
  let archive: Awaited<ReturnType<typeof listArchive>> = [];
  try {
    archive = await listArchive(dir);
  } catch (err) {
    r.problems.push({ where: 'wal-archive', problem: (err as Error).message });
  }
  if (all.length === 0 && archive.length === 0 && r.problems.length === 0) {
    throw raError('RA_ERR_SNAPSHOT_INVALID', `${dir} holds no snapshots and no archived WAL (expected ${path.join(dir, 'snapshots')}/<id>/manifest.json)`);
  }
  const ids = new Set(all.map((s) => s.id));
  const total = all.reduce((n, s) => n + (s.manifest ? s.manifest.chunks.length + s.manifest.wal.length : 0), 0) + archive.length;
  let done = 0;
  const tick = () => onProgress?.(++done, total);

  const check = async (where: string, file: string, e: FileEntry): Promise<Buffer | null> => {
    try {
      const raw = await readRaw(file, e);
      r.bytes += e.bytes;
      return raw;
    } catch (err) {
      r.problems.push({ where, file, problem: (err as Error).message });
      return null;
    }
  };

  for (const s of all) {
    if (!s.manifest) {
      r.problems.push({ where: s.id, file: path.join(snapshotPath(dir, s.id), 'manifest.json'), problem: s.error!.message });
      continue;
    }
    const m = s.manifest;
    r.snapshots++;
    if (m.kind === 'incremental' && (!m.baseId || !ids.has(m.baseId))) r.problems.push({ where: m.id, problem: `its base snapshot ${m.baseId} is missing` });
    for (const c of m.chunks) {
      const file = path.join(snapshotPath(dir, m.id), c.file);
      const raw = await check(m.id, file, c);
      r.chunks++;
      if (raw) {
        let at = 0;
        for (const [first, count] of c.pages) {
          for (let id = first; id < first + count; id++, at += m.pageSize) {
            const fault = at + m.pageSize <= raw.byteLength ? engine.pages.verify(raw.subarray(at, at + m.pageSize), id) : 'missing';
            if (fault) r.problems.push({ where: m.id, file, pageId: id, problem: `page ${id} fails its ${fault} check` });
            r.pages++;
          }
        }
        if (at !== raw.byteLength) r.problems.push({ where: m.id, file, problem: `holds ${raw.byteLength} bytes; its page list accounts for ${at}` });
      }
      tick();
    }
    const storeId = Buffer.from(m.storeId, 'hex');
    for (const w of m.wal) {
      const file = path.join(snapshotPath(dir, m.id), w.file);
      const raw = await check(m.id, file, w);
      const bad = raw && engine.log.checkSegmentHeader(raw, storeId, w.startLsn, m.segmentSize);
      if (bad) r.problems.push({ where: m.id, file, problem: `WAL segment header: ${bad}` });
      r.walFiles++;
      tick();
    }
  }
  for (const a of archive) {
    await check('wal-archive', path.join(archiveDirOf(dir), a.file), a);
    r.walFiles++;
    tick();
  }
  return r;
}
