/**
 * What a scan reads: a store's data file and its geometry, checked before any page is read, so
 * that a file that cannot be a store of pages (empty, truncated, a partial page at its end, pages
 * of another size) gets one clear error instead of a flood of "corrupt" pages.
 *
 * The geometry comes from the control file; the superblock (page 0) must agree with it. Without a
 * readable control file (say it was lost), the superblock alone gives it, or the caller's page
 * size when the superblock is damaged too.
 *
 * Everything about the store's files is asked of its engine's page face
 * (core/contracts/PageEngine.ts): its state (the control file), its first page, its log.
 */
import { open, stat } from 'node:fs/promises';
import path from 'node:path';
import type { PageEngine, StoreState } from '../../core/contracts/PageEngine.js';
import { isRaError, raError } from '../../core/errors.js';

/** A store's data file, ready to scan. */
export interface ScanTarget {
  /** The store's engine, through its page face. */
  readonly engine: PageEngine;
  readonly dir: string;
  readonly dataFile: string;
  readonly walDir: string;
  readonly pageSize: number;
  readonly pageCount: number;
  /** Where the geometry came from. */
  readonly geometryFrom: 'control file' | 'superblock' | 'page size given';
  /**
   * What keeps the store from opening though its pages may all verify: a missing or damaged
   * control file, or a page 0 that verifies but is not this store's superblock. Empty when
   * the store's own files agree.
   */
  readonly storeProblems: readonly string[];
}

export interface ScanTargetOptions {
  /** The page size the caller expects; a store with another page size is an error. */
  pageSize?: number;
  /**
   * Also read the WAL as recovery would (read-only) and report what would make it refuse, under
   * `storeProblems`. Costs a read of the WAL since the last checkpoint: for full scans, not for
   * each background scrub pass.
   */
  checkRecovery?: boolean;
}

/** Reads and checks a store's geometry against its data file. Throws RA_ERR_STORE_NOT_FOUND or RA_ERR_STORE_INVALID (exit 2) naming what is wrong. */
export async function openScanTarget(engine: PageEngine, dir: string, options: ScanTargetOptions = {}): Promise<ScanTarget> {
  const { pages } = engine;
  if (options.pageSize !== undefined && !pages.isValidPageSize(options.pageSize)) {
    throw raError('RA_ERR_USAGE', `page size must be a power of two from 4096 to 65536 (got ${JSON.stringify(options.pageSize)})`);
  }
  const dataFile = engine.files.dataFile(dir);
  const walDir = engine.files.logDir(dir);
  let size: number;
  try {
    const st = await stat(dataFile);
    if (!st.isFile()) throw raError('RA_ERR_STORE_INVALID', `${dataFile} is not a regular file`);
    size = st.size;
  } catch (err) {
    if (isRaError(err)) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw raError('RA_ERR_STORE_NOT_FOUND', `${dir} holds no page store: ${dataFile} does not exist`, { cause: err });
    }
    throw raError('RA_ERR_STORE_INVALID', `cannot read ${dataFile}: ${(err as Error).message}`, { cause: err });
  }
  if (size === 0) {
    throw raError('RA_ERR_STORE_INVALID', `${dataFile} is empty (0 bytes); a page store's data file holds at least 2 pages (a superblock and a data page)`, {
      details: { file: dataFile, size },
    });
  }

  const superblock = await pages.readFirstPageGeometry(dataFile);
  let control: StoreState | null = null;
  let controlProblem: string | null = null;
  try {
    control = await engine.files.readState(dir);
  } catch (err) {
    if (!isRaError(err, 'RA_ERR_STORE_NOT_FOUND') && !isRaError(err, 'RA_ERR_STORE_INVALID')) throw err;
    controlProblem = (err as Error).message;
  }

  let pageSize: number;
  let pageCount: number;
  let from: ScanTarget['geometryFrom'];
  if (control) {
    ({ pageSize, pageCount } = control);
    from = 'control file';
    if (superblock && superblock.pageSize !== pageSize) {
      throw raError(
        'RA_ERR_STORE_INVALID',
        `wrong page size: the control file of ${dir} says ${pageSize}-byte pages, but the superblock of ${dataFile} says ${superblock.pageSize} (files of two stores mixed?)`,
        { details: { file: dataFile, controlPageSize: pageSize, superblockPageSize: superblock.pageSize } },
      );
    }
  } else if (superblock) {
    ({ pageSize, pageCount } = superblock);
    from = 'superblock';
  } else if (options.pageSize !== undefined) {
    pageSize = options.pageSize;
    pageCount = Math.floor(size / pageSize);
    from = 'page size given';
  } else {
    throw raError(
      'RA_ERR_STORE_INVALID',
      `cannot tell the page size of ${dataFile}: ${controlProblem ?? 'no control file'}, and its superblock (page 0) is damaged; give the page size (--page-size) to scan it anyway`,
    );
  }
  if (!pages.isValidPageSize(pageSize)) {
    throw raError('RA_ERR_STORE_INVALID', `wrong page size: the ${from} of ${dir} says ${pageSize}-byte pages; expected a power of two from 4096 to 65536`);
  }
  if (options.pageSize !== undefined && options.pageSize !== pageSize) {
    throw raError('RA_ERR_STORE_INVALID', `wrong page size: ${options.pageSize} was given, but ${dir} has ${pageSize}-byte pages (from its ${from})`, {
      details: { given: options.pageSize, pageSize },
    });
  }

  const expected = pageSize * pageCount;
  const where = `${pageCount} pages of ${pageSize} bytes (${expected} bytes) per its ${from}`;
  if (size % pageSize !== 0) {
    const whole = Math.floor(size / pageSize);
    throw raError(
      'RA_ERR_STORE_INVALID',
      `${dataFile} is ${size} bytes, not a multiple of the page size ${pageSize} (${whole} whole pages and ${size - whole * pageSize} bytes of a partial one)${size < expected ? ', and truncated' : ''}; expected ${where}`,
      { details: { file: dataFile, size, pageSize, pageCount } },
    );
  }
  if (size < expected) {
    throw raError('RA_ERR_STORE_INVALID', `${dataFile} is truncated: ${size} bytes (${size / pageSize} pages); expected ${where}`, {
      details: { file: dataFile, size, pageSize, pageCount },
    });
  }
  if (size > expected) {
    throw raError('RA_ERR_STORE_INVALID', `${dataFile} is ${size} bytes (${size / pageSize} pages), longer than expected: ${where}`, {
      details: { file: dataFile, size, pageSize, pageCount },
    });
  }
  const storeProblems: string[] = [];
  if (controlProblem) storeProblems.push(`control file: ${controlProblem}`);
  else if (control) {
    const page0 = await readPage0(dataFile, pageSize);
    // A page 0 that fails its checks is reported by the page scan; one that passes them must
    // still be this store's superblock.
    if (pages.verify(page0, 0) === null) {
      const problem = pages.firstPageProblem(page0, control);
      if (problem) storeProblems.push(`${dataFile}: ${problem}`);
    }
  }
  if (!controlProblem && options.checkRecovery) {
    const wal = await persistentRecoveryProblem(engine, dir);
    if (wal) storeProblems.push(`recovery would refuse: ${wal}`);
  }
  return { engine, dir, dataFile, walDir, pageSize, pageCount, geometryFrom: from, storeProblems };
}

/** A recovery problem seen three times in a row, 50 ms apart: not a checkpoint of a live owner racing the read. */
async function persistentRecoveryProblem(engine: PageEngine, dir: string): Promise<string | null> {
  // The engine loads its recovery code only when asked: a scan without the check never does.
  let problem: string | null = null;
  for (let attempt = 0; attempt < 3; attempt++) {
    problem = await engine.recoveryProblem(dir);
    if (problem === null) return null;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return problem;
}

async function readPage0(dataFile: string, pageSize: number): Promise<Buffer> {
  const h = await open(dataFile, 'r');
  try {
    const page = Buffer.alloc(pageSize);
    await h.read(page, 0, pageSize, 0);
    return page;
  } finally {
    await h.close();
  }
}

/**
 * An upper bound of the end of a store's WAL: the last segment's start LSN plus its file size.
 * Cheap (a directory listing and one stat) and safe for the LSN check: every record lies below
 * it, and pages reach the data file only after the log holding their LSN is flushed. Without any
 * segment there is no bound: Number.MAX_SAFE_INTEGER turns the check off.
 *
 * A segment made at full size (FORMAT.md, FULL_SIZE) makes this the end of the live segment, up
 * to a segment (16 MiB of LSN by default) past the log's end: a page LSN damaged to a value in
 * that window passes. Finding the log's end exactly means reading the live segment back to its
 * last record — up to 16 MiB for every range scanned (tried: it made a 1 MiB/s scrub read 16 MiB
 * of WAL per 100 KiB of pages) — so the looser bound is kept: an LSN field hit by random damage
 * lands far past it.
 */
export async function walEndLsn(target: Pick<ScanTarget, 'engine' | 'walDir'>): Promise<number> {
  const { engine: { log }, walDir } = target;
  const segments = await log.listSegments(walDir).catch(() => [] as number[]);
  const last = segments.at(-1);
  if (last === undefined) return Number.MAX_SAFE_INTEGER;
  try {
    const { size } = await stat(path.join(walDir, log.segmentName(last)));
    return last + size;
  } catch {
    // Recycled between the listing and the stat: a newer segment exists; no cheap bound now.
    return Number.MAX_SAFE_INTEGER;
  }
}
