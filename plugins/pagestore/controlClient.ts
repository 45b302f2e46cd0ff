/**
 * The agent's side of a store's control socket (controlSocket.ts): one connection, requests
 * answered in order, each with a deadline.
 *
 *   const s = await ControlClient.with(storeDir, (c) => c.status());
 */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { raError, type ErrorCode } from '../../core/errors.js';
import { CONTROL_SOCKET, MAX_LINE, MAX_SOCKET_PATH, controlSocketOf } from './controlSocket.js';
import { LineSplitter } from './lineSplitter.js';
import { MAX_BATCH_PAGES } from './pageBatch.js';
import type { CheckpointStats, DropCachesResult, PageRepair, PageState, StoreStatus } from './storeTypes.js';

/** Pages asked of the replica in one `replica-pages` request (its timeouts run from the request). */
export const REPLICA_BATCH_PAGES = 256;

/** A batch page's answer as the client hands it on: the value, or this page's error. */
export type BatchResult<T> = { pageId: number; value: T; error?: undefined } | { pageId: number; error: Error };

/** The `write-pages` entries of `pages`, cut into requests whose lines fit the socket's limit. */
export function writePagesBatches(pages: ReadonlyArray<{ pageId: number; image?: Uint8Array; asOfLsn?: number }>, maxLine = MAX_LINE): Array<Array<{ pageId: number; image?: string; asOfLsn?: number }>> {
  const head = JSON.stringify({ op: 'write-pages', pages: [] }).length;
  const out: Array<Array<{ pageId: number; image?: string; asOfLsn?: number }>> = [];
  let cur: Array<{ pageId: number; image?: string; asOfLsn?: number }> = [];
  let len = head;
  for (const p of pages) {
    const e = { pageId: p.pageId, ...(p.image ? { image: Buffer.from(p.image).toString('base64') } : {}), ...(p.asOfLsn !== undefined ? { asOfLsn: p.asOfLsn } : {}) };
    const n = JSON.stringify(e).length + 1;
    if (head + n > maxLine) throw raError('RA_ERR_CONTROL', `page ${p.pageId}'s image alone does not fit a control request (${maxLine} bytes)`);
    if (cur.length > 0 && (len + n > maxLine || cur.length >= MAX_BATCH_PAGES)) {
      out.push(cur);
      cur = [];
      len = head;
    }
    cur.push(e);
    len += n;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

/** `n` items at a time. */
const chunks = <T>(xs: readonly T[], n: number): T[][] => Array.from({ length: Math.ceil(xs.length / n) }, (_, i) => xs.slice(i * n, (i + 1) * n));

/** A wire answer (`PageBatchAnswer`) as a result; `value` maps a good one. */
function batchResult<T>(a: Record<string, unknown>, value: (a: Record<string, unknown>) => T): BatchResult<T> {
  const pageId = Number(a.pageId);
  const e = a.error as { code?: unknown; message?: unknown; reason?: unknown } | undefined;
  if (!e) return { pageId, value: value(a) };
  const code = typeof e.code === 'string' && /^RA_ERR_[A-Z0-9_]+$/.test(e.code) ? (e.code as ErrorCode) : 'RA_ERR_CONTROL';
  return { pageId, error: raError(code, `store owner: ${String(e.message)}`, { details: { pageId, ...(typeof e.reason === 'string' ? { reason: e.reason } : {}) } }) };
}

export interface ControlClientOptions {
  /** Milliseconds each request may take. Default 30 s (a checkpoint writes every dirty page). */
  timeoutMs?: number;
}

export class ControlClient {
  private readonly lines = new LineSplitter();
  private readonly waiting: Array<{ resolve: (v: Record<string, unknown>) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }> = [];
  private failed: Error | null = null;

  private constructor(
    private readonly sock: net.Socket,
    readonly path: string,
    private readonly timeoutMs: number,
  ) {
    sock.setEncoding('utf8');
    sock.on('data', (chunk: string) => this.onData(chunk));
    const fail = (err: Error) => {
      this.failed ??= err;
      for (const w of this.waiting.splice(0)) {
        clearTimeout(w.timer);
        w.reject(this.failed);
      }
    };
    sock.on('error', (err) => fail(raError('RA_ERR_CONTROL', `control socket ${path}: ${err.message}`, { cause: err })));
    sock.on('close', () => fail(raError('RA_ERR_CONTROL', `control socket ${path} closed by the store's owner`)));
  }

  /** Connects to the control socket of the store in `dir`; RA_ERR_CONTROL_UNAVAILABLE if nobody serves it. */
  static async connect(dir: string, options: ControlClientOptions = {}): Promise<ControlClient> {
    const file = controlSocketOf(path.resolve(dir));
    const unavailable = (err: NodeJS.ErrnoException) =>
      raError('RA_ERR_CONTROL_UNAVAILABLE', `no one serves the control socket ${file} (${err.code ?? err.message}): the store's owner is not running, or runs without a control socket`, { cause: err, details: { path: file } });
    // A path longer than sun_path holds is reached through an open handle on its directory.
    const runDir = Buffer.byteLength(file) > MAX_SOCKET_PATH ? await open(path.dirname(file), constants.O_RDONLY | constants.O_DIRECTORY).catch((err: NodeJS.ErrnoException) => { throw unavailable(err); }) : null;
    const address = runDir ? `/proc/self/fd/${runDir.fd}/${CONTROL_SOCKET}` : file;
    try {
      return await new Promise((resolve, reject) => {
        const sock = net.createConnection(address);
        sock.once('connect', () => {
          sock.removeAllListeners('error');
          resolve(new ControlClient(sock, file, options.timeoutMs ?? 30_000));
        });
        sock.once('error', (err: NodeJS.ErrnoException) => reject(unavailable(err)));
      });
    } finally {
      await runDir?.close();
    }
  }

  /** Connects, runs `fn` with the client, and closes it whatever happens. */
  static async with<T>(dir: string, fn: (c: ControlClient) => Promise<T>, options: ControlClientOptions = {}): Promise<T> {
    const c = await ControlClient.connect(dir, options);
    try {
      return await fn(c);
    } finally {
      c.close();
    }
  }

  async status(): Promise<StoreStatus> {
    return (await this.request({ op: 'status' })).status as StoreStatus;
  }

  async checkpoint(): Promise<CheckpointStats> {
    return (await this.request({ op: 'checkpoint' })).checkpoint as CheckpointStats;
  }

  async readPage(pageId: number): Promise<{ image: Buffer; cached: boolean; fault: string | null }> {
    const r = await this.request({ op: 'read-page', pageId });
    return { image: Buffer.from(String(r.image), 'base64'), cached: r.cached === true, fault: typeof r.fault === 'string' ? r.fault : null };
  }

  /**
   * Asks the owner to write `image` (verified there) or, with none, its cached copy of the page;
   * `asOfLsn`: the image holds every record for the page below that durable LSN of the owner's.
   */
  async writePage(pageId: number, image?: Uint8Array, asOfLsn?: number): Promise<PageRepair> {
    const r = await this.request({ op: 'write-page', pageId, ...(image ? { image: Buffer.from(image).toString('base64') } : {}), ...(asOfLsn !== undefined ? { asOfLsn } : {}) });
    return r.repair as PageRepair;
  }

  /** Asks a primary's owner for a verified, current copy of the page from its replicas (writes nothing). */
  async replicaPage(pageId: number): Promise<{ image: Buffer; lsn: number; replica: string }> {
    const r = await this.request({ op: 'replica-page', pageId });
    return { image: Buffer.from(String(r.image), 'base64'), lsn: Number(r.lsn), replica: String(r.replica) };
  }

  /** `read-page` without the images, for many pages (`page-states`). */
  async pageStates(pageIds: readonly number[]): Promise<Array<BatchResult<Omit<PageState, 'pageId'>>>> {
    const replies = await Promise.all(chunks(pageIds, MAX_BATCH_PAGES).map((ids) => this.request({ op: 'page-states', pageIds: ids })));
    return replies.flatMap((r) => (r.pages as Array<Record<string, unknown>>).map((a) => batchResult(a, (x) => ({ cached: x.cached === true, fault: typeof x.fault === 'string' ? x.fault : null, lsn: Number(x.lsn) }))));
  }

  /** `replica-page` for many pages; requests of REPLICA_BATCH_PAGES, sent together, answered in order. */
  async replicaPages(pageIds: readonly number[]): Promise<Array<BatchResult<{ image: Buffer; lsn: number; replica: string }>>> {
    const replies = await Promise.all(chunks(pageIds, REPLICA_BATCH_PAGES).map((ids) => this.request({ op: 'replica-pages', pageIds: ids })));
    return replies.flatMap((r) => (r.pages as Array<Record<string, unknown>>).map((a) => batchResult(a, (x) => ({ image: Buffer.from(String(x.image), 'base64'), lsn: Number(x.lsn), replica: String(x.replica) }))));
  }

  /** `write-page` for many pages, in requests that fit the line limit (one data-file sync each). */
  async writePages(pages: ReadonlyArray<{ pageId: number; image?: Uint8Array; asOfLsn?: number }>): Promise<Array<BatchResult<Omit<PageRepair, 'pageId'>>>> {
    const replies = await Promise.all(writePagesBatches(pages).map((b) => this.request({ op: 'write-pages', pages: b })));
    return replies.flatMap((r) => (r.repairs as Array<Record<string, unknown>>).map((a) => batchResult(a, (x) => ({ source: x.source === 'cache' ? ('cache' as const) : ('image' as const), lsn: Number(x.lsn) }))));
  }

  /** True once the connection failed or was closed. */
  get closed(): boolean {
    return this.failed !== null || this.sock.destroyed;
  }

  /** Grants a clustered primary's owner the agent's lease until `untilNs` (commitFence.ts). */
  async grantLease(epoch: number, untilNs: bigint): Promise<{ untilNs: string; remainingNs: string }> {
    const r = await this.request({ op: 'lease', epoch, untilNs: untilNs.toString() });
    return r.lease as { untilNs: string; remainingNs: string };
  }

  /** Asks the owner to let go of its clean cached pages (memory pressure). */
  async dropCaches(): Promise<DropCachesResult> {
    return (await this.request({ op: 'drop-caches' })).dropped as DropCachesResult;
  }

  /** The actions the application registered on its store (appActions.ts). */
  async appActions(): Promise<Array<{ name: string; description: string | null }>> {
    return (await this.request({ op: 'actions' })).actions as Array<{ name: string; description: string | null }>;
  }

  /** Runs one phase of an application action; the owner bounds it by `timeoutMs`. */
  async runAppAction(name: string, phase: 'apply' | 'verify', options: Record<string, unknown> = {}, timeoutMs?: number): Promise<unknown> {
    return (await this.request({ op: 'app-action', name, phase, options, ...(timeoutMs !== undefined ? { timeoutMs } : {}) })).result;
  }

  close(): void {
    this.sock.destroy();
  }

  private request(body: Record<string, unknown>): Promise<Record<string, unknown>> {
    if (this.failed) return Promise.reject(this.failed);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const err = raError('RA_ERR_CONTROL', `the store's owner did not answer "${String(body.op)}" on ${this.path} within ${this.timeoutMs} ms`);
        this.failed ??= err;
        this.sock.destroy();
        reject(err);
      }, this.timeoutMs);
      this.waiting.push({ resolve, reject, timer });
      this.sock.write(JSON.stringify(body) + '\n');
    });
  }

  private onData(chunk: string): void {
    for (const line of this.lines.push(chunk)) {
      const w = this.waiting.shift();
      if (!w) continue;
      clearTimeout(w.timer);
      let reply: Record<string, unknown>;
      try {
        reply = JSON.parse(line) as Record<string, unknown>;
      } catch {
        w.reject(raError('RA_ERR_CONTROL', `malformed reply on ${this.path}: ${line.slice(0, 200)}`));
        continue;
      }
      if (reply.ok === true) {
        w.resolve(reply);
      } else {
        // The owner sends catalogued codes only; one whose plugin catalogue this process has not loaded is kept all the same.
        const code = typeof reply.code === 'string' && /^RA_ERR_[A-Z0-9_]+$/.test(reply.code) ? (reply.code as ErrorCode) : 'RA_ERR_CONTROL';
        w.reject(raError(code, `store owner: ${String(reply.message)}`, { details: { path: this.path } }));
      }
    }
  }
}
