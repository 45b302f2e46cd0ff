/**
 * A transaction: page-level strict two-phase locking, changes logged before they are applied,
 * commit acknowledged only once its record is durable, abort from in-memory before-images.
 */
import { isRaError, raError } from '../../core/errors.js';
import { PAGE_HEADER_SIZE } from './format.js';
import type { Frame } from './pageCache.js';
import type { LockMode } from './lockManager.js';

export type TxState = 'active' | 'committing' | 'committed' | 'aborted';

/** What a transaction needs from its store. */
export interface TxHost {
  readonly pageCount: number;
  readonly payloadSize: number;
  lock(tx: Transaction, pageId: number, mode: LockMode): Promise<void>;
  pin(pageId: number): Promise<Frame>;
  unpin(frame: Frame): void;
  /** Logs and applies a change; returns the record's LSN. */
  logChange(tx: Transaction, frame: Frame, pageOffset: number, after: Uint8Array, before: Uint8Array | null, undoNextLsn: number): number;
  logEnd(tx: Transaction, commit: boolean): { lsn: number; end: number };
  flush(upto: number): Promise<void>;
  ended(tx: Transaction): void;
}

interface UndoEntry {
  lsn: number;
  prevLsn: number;
  pageId: number;
  pageOffset: number;
  before: Uint8Array;
}

export class Transaction {
  state: TxState = 'active';
  /** LSN of the transaction's first and latest records (0: none yet). */
  firstLsn = 0;
  lastLsn = 0;
  private readonly undo: UndoEntry[] = [];

  constructor(
    readonly id: number,
    private readonly host: TxHost,
  ) {}

  /** A copy of the page's payload (`payloadSize` bytes). */
  async read(pageId: number): Promise<Buffer> {
    this.checkActive('read');
    this.checkPage(pageId);
    await this.withLock(pageId, 'S');
    const frame = await this.host.pin(pageId);
    try {
      return Buffer.from(frame.page.subarray(PAGE_HEADER_SIZE));
    } finally {
      this.host.unpin(frame);
    }
  }

  /** Writes `data` at `offset` within the page's payload. */
  async write(pageId: number, offset: number, data: Uint8Array): Promise<void> {
    this.checkActive('write');
    this.checkPage(pageId);
    if (!(data instanceof Uint8Array) || data.byteLength === 0) {
      throw raError('RA_ERR_PAGE_RANGE', `data must be a non-empty Uint8Array (got ${data instanceof Uint8Array ? 'an empty one' : typeof data})`);
    }
    if (!Number.isInteger(offset) || offset < 0 || offset + data.byteLength > this.host.payloadSize) {
      throw raError('RA_ERR_PAGE_RANGE', `write of ${data.byteLength} bytes at offset ${offset} does not fit the ${this.host.payloadSize}-byte payload of page ${pageId}`);
    }
    await this.withLock(pageId, 'X');
    this.checkActive('write');
    const frame = await this.host.pin(pageId);
    try {
      const pageOffset = PAGE_HEADER_SIZE + offset;
      const before = Buffer.from(frame.page.subarray(pageOffset, pageOffset + data.byteLength));
      const prevLsn = this.lastLsn;
      const lsn = this.host.logChange(this, frame, pageOffset, data, before, 0);
      this.undo.push({ lsn, prevLsn, pageId, pageOffset, before });
    } finally {
      this.host.unpin(frame);
    }
  }

  /** Makes the transaction's changes durable; resolves only once its commit record is on disk. */
  async commit(): Promise<void> {
    this.checkActive('commit');
    if (this.lastLsn === 0) {
      this.finish('committed');
      return;
    }
    this.state = 'committing';
    const { end } = this.host.logEnd(this, true);
    await this.host.flush(end);
    this.finish('committed');
  }

  /** Rolls back every change from its before-image, logging each as a compensation record. */
  async abort(): Promise<void> {
    this.checkActive('abort');
    await this.rollback();
  }

  private async rollback(): Promise<void> {
    for (let i = this.undo.length - 1; i >= 0; i--) {
      const u = this.undo[i]!;
      const frame = await this.host.pin(u.pageId);
      try {
        this.host.logChange(this, frame, u.pageOffset, u.before, null, u.prevLsn);
      } finally {
        this.host.unpin(frame);
      }
    }
    if (this.lastLsn !== 0) this.host.logEnd(this, false);
    this.finish('aborted');
  }

  private finish(state: TxState): void {
    this.state = state;
    this.undo.length = 0;
    this.host.ended(this);
  }

  private async withLock(pageId: number, mode: LockMode): Promise<void> {
    try {
      await this.host.lock(this, pageId, mode);
    } catch (err) {
      if (isRaError(err, 'RA_ERR_DEADLOCK') && this.state === 'active') await this.rollback();
      throw err;
    }
  }

  private checkActive(op: string): void {
    if (this.state !== 'active') throw raError('RA_ERR_TX_STATE', `cannot ${op}: transaction ${this.id} is ${this.state}`);
  }

  private checkPage(pageId: number): void {
    if (!Number.isInteger(pageId) || pageId < 1 || pageId >= this.host.pageCount) {
      throw raError('RA_ERR_PAGE_RANGE', `page id must be an integer from 1 to ${this.host.pageCount - 1}; page 0 is the superblock (got ${pageId})`);
    }
  }
}
