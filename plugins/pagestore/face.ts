/**
 * The page store behind the `PageEngine` face (core/contracts/PageEngine.ts): the one way other
 * plugins reach a page store's files, log and live owner. Byte layouts: FORMAT.md.
 *
 * Only light modules are imported here (formats, segment names, the control file); recovery and
 * the control socket client load when first used, so a command that only scans pages does not
 * pay for them.
 */
import { open } from 'node:fs/promises';
import { redoApplyPages, xxh3 } from 'recovery-agent/native';
import { raError } from '../../core/errors.js';
import type { CheckpointContent, LogLayout, LogRecordKind, LiveOwner, PageEngine, PageLayout, StoreFiles } from '../../core/contracts/PageEngine.js';
import type { StoreDescription } from '../../core/contracts/StorageEngine.js';
import { readArchiveLink } from './archiveLink.js';
import { writePages } from './checkpoint.js';
import type { CheckpointBody } from './checkpoint.js';
import { readControl, writeControl } from './control.js';
import { PAGE_HEADER_SIZE, PAGE_MAGIC, isValidPageSize, kMagic, kPageLsn, pageLsn, readPageAt, readU32, readU64, verifyPage } from './format.js';
import { SUPERBLOCK_MAGIC, dataFileOf, storeExists, superblockProblem, walDirOf } from './storeFiles.js';
import { acquireStoreLock, lockHolder } from './storeLock.js';
import { settleSwap, swapInStore } from './storeSwap.js';
import { RECORD_MIN_SIZE, RecordType, commitTimeAt, decodeRecord, kRecLength, kRecLsn, kRecPageId, kRecTxId, kRecType } from './walRecord.js';
import { forEachPageRecord, scanRecords } from './walPages.js';
import { readRecordFromDisk } from './walScan.js';
import { SEGMENT_HEADER_SIZE, checkSegmentHeader, listSegments, segmentContentLength, segmentLengthProblem, segmentName, segmentPosition, segmentStartOf, segmentFileSize, fullSizeFile } from './walSegments.js';
import type { RecoverOptions, RecoveryStats } from './recovery.js';

const SEGMENT_NAME = /^([0-9a-f]{16})\.wal$/;

export const pageLayout: PageLayout = {
  headerSize: PAGE_HEADER_SIZE,
  lsnOffset: kPageLsn,
  isValidPageSize,
  verify: verifyPage,
  lsn: pageLsn,
  readPage: readPageAt,
  writePages,
  async readFirstPageGeometry(dataFile) {
    const h = await open(dataFile, 'r');
    try {
      const b = Buffer.alloc(PAGE_HEADER_SIZE + 12);
      const { bytesRead } = await h.read(b, 0, b.byteLength, 0);
      if (bytesRead < b.byteLength) return null;
      if (b.readUInt32LE(kMagic) !== PAGE_MAGIC || b.readUInt32LE(PAGE_HEADER_SIZE) !== SUPERBLOCK_MAGIC) return null;
      return { pageSize: b.readUInt32LE(PAGE_HEADER_SIZE + 4), pageCount: b.readUInt32LE(PAGE_HEADER_SIZE + 8) };
    } finally {
      await h.close();
    }
  },
  firstPageProblem: (page0, state) => superblockProblem(page0, state),
};

function kindOf(type: number | undefined): LogRecordKind {
  switch (type) {
    case RecordType.Update:
    case RecordType.Clr:
      return 'page';
    case RecordType.Commit:
      return 'commit';
    case RecordType.Abort:
      return 'abort';
    case RecordType.Checkpoint:
      return 'checkpoint';
    default:
      return 'other';
  }
}

/** Scratch for applyToPage: one page at a time. */
const applyStatus = new Uint32Array(1);
const applyStarts = new Uint32Array(2);
const applyPages = new Uint32Array(1);

export const logLayout: LogLayout = {
  segmentHeaderSize: SEGMENT_HEADER_SIZE,
  segmentName,
  segmentStartOfName(name) {
    const m = SEGMENT_NAME.exec(name);
    return m ? parseInt(m[1]!, 16) : null;
  },
  segmentStartOf,
  listSegments,
  checkSegmentHeader,
  segmentContent: (bytes, fileBytes, segmentSize) => ({ length: segmentContentLength(bytes), cut: segmentLengthProblem(bytes, fileBytes, segmentSize) }),
  segmentFile: fullSizeFile,
  segmentFileSize,
  scanRecords,
  forEachPageRecord,
  recordLength: (buf, at) => readU32(buf, at + kRecLength),
  // An unstamped header (0, from before epochs) counts as epoch 1, as the writer reads it.
  segmentEpoch: (h) => Math.max(1, segmentPosition(h).epoch),
  recordChecksums(buf, at) {
    if (at + 8 > buf.byteLength) return null;
    const length = readU32(buf, at + kRecLength);
    // A record is at least its fixed header and checksum, a multiple of 8 (walRecord.ts).
    if (length < RECORD_MIN_SIZE || length % 8 !== 0 || at + length > buf.byteLength) return null;
    const hex = (v: bigint) => v.toString(16).padStart(16, '0');
    const stored = new DataView(buf.buffer, buf.byteOffset, buf.byteLength).getBigUint64(at + length - 8, true);
    return { stored: hex(stored), computed: hex(xxh3(buf.subarray(at, at + length - 8))), length };
  },
  recordLsn: (buf, at) => readU64(buf, at + kRecLsn),
  recordKind: (buf, at) => kindOf(buf[at + kRecType]),
  recordTxId: (buf, at) => readU64(buf, at + kRecTxId),
  commitTime: (buf, at) => (buf[at + kRecType] === RecordType.Commit ? commitTimeAt(buf, at) : null),
  recordPageId: (buf, at) => (kindOf(buf[at + kRecType]) === 'page' ? readU32(buf, at + kRecPageId) : null),
  decodeCheckpoint(buf, at, pageSize): CheckpointContent {
    const rec = decodeRecord(buf, at, pageSize);
    if (rec.type !== RecordType.Checkpoint || !rec.json) {
      throw raError('RA_ERR_WAL_CORRUPT', `the record at LSN ${rec.lsn} is not a checkpoint record`, { details: { lsn: rec.lsn } });
    }
    const body = JSON.parse(Buffer.from(rec.json).toString('utf8')) as CheckpointBody;
    return { redoLsn: body.redoLsn, nextTxId: body.nextTxId, activeTransactions: body.att, dirtyPages: body.dpt };
  },
  readRecord: (logDir, state, lsn) => readRecordFromDisk(logDir, state.storeId, state.segmentSize, lsn),
  applyToPage(image, pageId, pageSize, buf, positions) {
    if (positions.length === 0) return 0;
    applyStarts[0] = 0;
    applyStarts[1] = positions.length;
    applyPages[0] = pageId;
    const applied = redoApplyPages(buf, Uint32Array.from(positions), applyStarts, applyPages, 0, 1, image, pageSize, applyStatus);
    if (applyStatus[0]! > 1) {
      throw raError('RA_ERR_WAL_CORRUPT', `replaying log records onto page ${pageId} failed (redo status ${applyStatus[0]})`, { details: { pageId, status: applyStatus[0] } });
    }
    return applied;
  },
};

export const storeFiles: StoreFiles = {
  exists: storeExists,
  dataFile: dataFileOf,
  logDir: walDirOf,
  readState: (dir) => readControl(dir),
  writeState: (dir, state) => writeControl(dir, { ...state }),
  lock: (dir) => acquireStoreLock(dir),
  lockHolder,
  swapIn: swapInStore,
  settleSwap,
  rememberedArchive: readArchiveLink,
};

/** The live owner, through the store's control socket. */
async function connectOwner(dir: string, options: { timeoutMs?: number } = {}): Promise<LiveOwner> {
  const { ControlClient } = await import('./controlClient.js');
  const c = await ControlClient.connect(dir, options);
  return {
    status: () => c.status(),
    checkpoint: () => c.checkpoint(),
    readPage: (pageId) => c.readPage(pageId),
    installPage: (pageId, image, asOfLsn) => c.writePage(pageId, image, asOfLsn),
    replicaPage: (pageId) => c.replicaPage(pageId),
    grantLease: (epoch, untilNs) => c.grantLease(epoch, untilNs),
    pageStates: (pageIds) => c.pageStates(pageIds),
    replicaPages: (pageIds) => c.replicaPages(pageIds),
    installPages: (pages) => c.writePages(pages),
    dropCaches: () => c.dropCaches(),
    appActions: () => c.appActions(),
    runAppAction: (name, phase, options, timeoutMs) => c.runAppAction(name, phase, options, timeoutMs),
    get closed() {
      return c.closed;
    },
    close: () => c.close(),
  };
}

/** The page store engine; `defaults` are recovery's options (pool, log), `archiverOf` finds a store's archiver. */
export function makePageStoreEngine(
  defaults: RecoverOptions = {},
  archiverOf?: (storePath: string) => Promise<RecoverOptions['archiver']>,
): PageEngine & { recover(storePath: string, options?: RecoverOptions): Promise<RecoveryStats> } {
  return {
    name: 'pagestore',
    pages: pageLayout,
    log: logLayout,
    files: storeFiles,
    async describe(storePath: string): Promise<StoreDescription> {
      const c = await readControl(storePath);
      return { engine: 'pagestore', path: storePath, pageSize: c.pageSize, pageCount: c.pageCount };
    },
    async recover(storePath: string, options: RecoverOptions = {}): Promise<RecoveryStats> {
      const { recover } = await import('./recovery.js');
      const archiver = options.archiver ?? (await archiverOf?.(storePath));
      return recover(storePath, { ...defaults, ...(archiver ? { archiver } : {}), ...options });
    },
    connectOwner,
    async logUsage(dir) {
      const { walUsage } = await import('./walUsage.js');
      return walUsage(dir);
    },
    async recoveryProblem(dir) {
      const { recoveryProblem } = await import('./recoveryCheck.js');
      return recoveryProblem(dir);
    },
    async recoveryPending(dir) {
      const { recoveryPending } = await import('./recoveryCheck.js');
      return recoveryPending(dir);
    },
    replica: {
      async openReplica(dir, options = {}) {
        const { openReplica } = await import('./replica.js');
        const pool = options.pool ?? defaults.pool;
        const log = options.log ?? defaults.log;
        return openReplica(dir, { ...(pool ? { pool } : {}), ...(log ? { log } : {}) });
      },
      async initReplica(dir, ch, options) {
        const { receiveBaseCopy } = await import('./baseCopy.js');
        return receiveBaseCopy(ch, dir, { ...options, log: options.log ?? defaults.log });
      },
      async adoptLog(dir, options) {
        const { adoptLog } = await import('./replicaLog.js');
        return adoptLog(dir, options);
      },
    },
  };
}
