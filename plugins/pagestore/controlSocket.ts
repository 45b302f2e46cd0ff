/**
 * The store's control socket: how the agent works on a store while an application has it open
 * (it holds the lock, so the agent may not touch the files itself). A Unix domain socket,
 * `run/control.sock` in the store directory. `run/` is a 0700 directory of the owner's user,
 * made before the socket is bound, so no other user can connect at any moment (a chmod of the
 * socket after bind() would leave a window in which they can).
 *
 * Protocol: one JSON object per line each way; a connection may send several requests and gets
 * the replies in order. Requests:
 *
 *   { "op": "status" }                                  → { "ok": true, "status": StoreStatus }
 *   { "op": "checkpoint" }                              → { "ok": true, "checkpoint": CheckpointStats }
 *   { "op": "read-page", "pageId": N }                  → { "ok": true, "image": base64, "cached": bool, "fault": null | reason }
 *   { "op": "write-page", "pageId": N, "image"?: b64, "asOfLsn"?: N } → { "ok": true, "repair": PageRepair }
 *   { "op": "replica-page", "pageId": N }               → { "ok": true, "image": base64, "lsn": N, "replica": id }
 *   { "op": "page-states", "pageIds": [N…] }           → { "ok": true, "pages": [PageState | error, …] }
 *   { "op": "replica-pages", "pageIds": [N…] }         → { "ok": true, "pages": [{ pageId, image, lsn, replica } | error, …] }
 *   { "op": "write-pages", "pages": [{ pageId, image?, asOfLsn? }, …] } → { "ok": true, "repairs": [PageRepair | error, …] }
 *   { "op": "lease", "epoch": E, "untilNs": "…" }       → { "ok": true, "lease": { untilNs, remainingNs } }
 *   { "op": "drop-caches" }                             → { "ok": true, "dropped": DropCachesResult }
 *   { "op": "actions" }                                 → { "ok": true, "actions": [{ name, description }] }
 *   { "op": "app-action", "name": N, "phase": "apply" | "verify", "options"?: {…}, "timeoutMs"?: N }
 *                                                       → { "ok": true, "result": JSON } (verify: true | false)
 *
 * `write-page` is `PageStore.repairPage`: the store writes only an image that verifies (or its
 * own cached copy); `asOfLsn` says the image holds every record for the page below that durable
 * LSN of the store's. `replica-page` (a primary only) asks its replicas for a verified, current
 * copy of the page (`PageStore.replicaPage`) and writes nothing. The batch ops answer each page apart, in the order named (`PageBatchAnswer`: the
 * page's answer, or `{ pageId, error: { code, message, reason? } }`), so one refused page does not
 * fail the others: `page-states` is `read-page` without the images, `replica-pages` sends every
 * page's request to the replica at once (pageBatch.ts; it runs beside the requests before it,
 * since it changes nothing, and is answered in its turn), and `write-pages` checks each image as
 * `write-page` does and writes those that pass with one data-file sync. The line limit bounds a
 * batch: ControlClient splits `write-pages` to fit (`writePagesBatches`). `lease` (a clustered
 * primary only) is the agent's grant of its leadership lease, a deadline in
 * `process.hrtime.bigint()` nanoseconds as a decimal string (commitFence.ts). `drop-caches` lets
 * go of the clean cached pages (memory pressure); `actions` and `app-action` list and run the
 * actions the application registered (appActions.ts), each run under its time limit, in the
 * owner, so a hanging one is answered with RA_ERR_APP_ACTION_TIMEOUT and the connection goes on. A failure is `{ "ok": false, "code": "RA_ERR_…", "message": "…" }`. A line
 * longer than 1 MiB, or one that is not a request, gets an error and the connection is closed.
 */
import { constants, existsSync } from 'node:fs';
import { chmod, mkdir, open, unlink, type FileHandle } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import type { Logger } from 'pino';
import { describeError, isRaError, raError } from '../../core/errors.js';
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE, ownerFor } from '../../core/privateFiles.js';
import { LineSplitter } from './lineSplitter.js';
import { MAX_BATCH_PAGES } from './pageBatch.js';
import type { AppActionOptions, AppActionPhase } from './appActions.js';
import type { CheckpointStats, DropCachesResult, PageBatchAnswer, PageRepair, PageState, ReplicaPageCopy, StoreStatus } from './storeTypes.js';

export const CONTROL_SOCKET = 'control.sock';
/** The private directory in the store directory that holds the socket. */
export const CONTROL_SOCKET_DIR = 'run';
/** Longest request line accepted. */
export const MAX_LINE = 1 << 20;
/** Linux's sun_path holds 108 bytes, the terminating NUL included. */
export const MAX_SOCKET_PATH = 107;

export const controlSocketOf = (dir: string) => path.join(dir, CONTROL_SOCKET_DIR, CONTROL_SOCKET);

/** What the socket serves: the store's side of the protocol. */
export interface ControlTarget {
  status(): StoreStatus;
  checkpoint(): Promise<CheckpointStats>;
  readPage(pageId: number): Promise<{ image: Buffer; cached: boolean; fault: string | null }>;
  repairPage(pageId: number, image?: Uint8Array, asOfLsn?: number): Promise<PageRepair>;
  /** A primary's: a copy of the page from its replicas (absent: the op is refused). */
  replicaPage?(pageId: number): Promise<ReplicaPageCopy>;
  /** Batches (absent: the ops are refused); each page answered apart (pageBatch.ts). */
  pageStates?(pageIds: readonly number[]): Promise<Array<PageBatchAnswer<PageState>>>;
  replicaPages?(pageIds: readonly number[]): Promise<Array<PageBatchAnswer<ReplicaPageCopy>>>;
  repairPages?(pages: ReadonlyArray<{ pageId: number; image?: Uint8Array; asOfLsn?: number }>): Promise<Array<PageBatchAnswer<PageRepair>>>;
  /** A clustered primary's: the agent's lease grant (absent: the op is refused). */
  grantLease?(epoch: number, untilNs: bigint): { untilNs: string; remainingNs: string };
  /** Memory pressure: drops the clean cached pages (absent: the op is refused). */
  dropCaches?(): DropCachesResult;
  /** The application's registered actions, and one run of one (absent: the ops are refused). */
  appActions?(): Array<{ name: string; description: string | null }>;
  runAppAction?(name: string, phase: AppActionPhase, options: AppActionOptions, timeoutMs?: number): Promise<unknown>;
}

export interface ControlServer {
  readonly path: string;
  close(): Promise<void>;
}

type Request =
  | { op: 'page-states' | 'replica-pages'; pageIds: number[] }
  | { op: 'write-pages'; pages: Array<{ pageId: number; image?: string; asOfLsn?: number }> }
  | { op: 'app-action'; name: string; phase: AppActionPhase; options: AppActionOptions; timeoutMs?: number }
  | { op: 'status' | 'checkpoint' | 'drop-caches' | 'actions' } | { op: 'lease'; epoch: number; untilNs: bigint } | { op: 'read-page' | 'replica-page'; pageId: number } | { op: 'write-page'; pageId: number; image?: string; asOfLsn?: number };

/** `asOfLsn` of a write: absent, or an LSN. */
const asOfOk = (v: unknown) => v === undefined || (Number.isSafeInteger(v) && (v as number) >= 0);
const asOf = (v: unknown) => (v === undefined ? {} : { asOfLsn: v as number });

function parseRequest(line: string): Request | string {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return 'request is not JSON';
  }
  if (typeof v !== 'object' || v === null) return 'request is not a JSON object';
  const r = v as Record<string, unknown>;
  switch (r.op) {
    case 'status':
    case 'checkpoint':
    case 'drop-caches':
    case 'actions':
      return { op: r.op };
    case 'app-action': {
      if (typeof r.name !== 'string' || r.name.length === 0) return 'app-action needs a "name"';
      if (r.phase !== 'apply' && r.phase !== 'verify') return 'app-action needs "phase": "apply" or "verify"';
      if (r.options !== undefined && (typeof r.options !== 'object' || r.options === null || Array.isArray(r.options))) return '"options" must be a JSON object';
      if (r.timeoutMs !== undefined && !(Number.isSafeInteger(r.timeoutMs) && (r.timeoutMs as number) > 0)) return '"timeoutMs" must be a positive integer';
      return { op: 'app-action', name: r.name, phase: r.phase, options: (r.options ?? {}) as AppActionOptions, ...(r.timeoutMs !== undefined ? { timeoutMs: r.timeoutMs as number } : {}) };
    }
    case 'read-page':
    case 'replica-page':
    case 'write-page':
      if (!Number.isInteger(r.pageId)) return `${r.op} needs an integer "pageId"`;
      if (r.op === 'read-page' || r.op === 'replica-page') return { op: r.op, pageId: r.pageId as number };
      if (r.image !== undefined && typeof r.image !== 'string') return '"image" must be a base64 string';
      if (!asOfOk(r.asOfLsn)) return '"asOfLsn" must be a non-negative integer';
      return { op: r.op, pageId: r.pageId as number, ...(typeof r.image === 'string' ? { image: r.image } : {}), ...asOf(r.asOfLsn) };
    case 'page-states':
    case 'replica-pages': {
      const ids = r.pageIds;
      if (!Array.isArray(ids) || ids.length > MAX_BATCH_PAGES || !ids.every((x) => Number.isInteger(x))) return `${r.op} needs "pageIds", a list of at most ${MAX_BATCH_PAGES} integers`;
      return { op: r.op, pageIds: ids as number[] };
    }
    case 'write-pages': {
      const pages = r.pages;
      const good = (x: unknown) => typeof x === 'object' && x !== null && Number.isInteger((x as { pageId?: unknown }).pageId) && ['string', 'undefined'].includes(typeof (x as { image?: unknown }).image) && asOfOk((x as { asOfLsn?: unknown }).asOfLsn);
      if (!Array.isArray(pages) || pages.length > MAX_BATCH_PAGES || !pages.every(good)) return `write-pages needs "pages", a list of at most ${MAX_BATCH_PAGES} { "pageId": integer, "image"?: base64, "asOfLsn"?: integer }`;
      return { op: 'write-pages', pages: (pages as Array<{ pageId: number; image?: string; asOfLsn?: unknown }>).map((x) => ({ pageId: x.pageId, ...(typeof x.image === 'string' ? { image: x.image } : {}), ...asOf(x.asOfLsn) })) };
    }
    case 'lease':
      if (!Number.isSafeInteger(r.epoch) || (r.epoch as number) < 0) return 'lease needs a non-negative integer "epoch"';
      if (typeof r.untilNs !== 'string' || !/^\d{1,20}$/.test(r.untilNs)) return 'lease needs "untilNs", a decimal string of nanoseconds';
      return { op: 'lease', epoch: r.epoch as number, untilNs: BigInt(r.untilNs) };
    default:
      return `unknown op ${JSON.stringify(r.op)} (expected status, checkpoint, read-page, write-page, replica-page, page-states, replica-pages, write-pages, lease, drop-caches, actions or app-action)`;
  }
}

async function handle(target: ControlTarget, req: Request): Promise<Record<string, unknown>> {
  switch (req.op) {
    case 'status':
      return { status: target.status() };
    case 'checkpoint':
      return { checkpoint: await target.checkpoint() };
    case 'read-page': {
      const r = await target.readPage(req.pageId);
      return { image: r.image.toString('base64'), cached: r.cached, fault: r.fault };
    }
    case 'replica-page': {
      if (!target.replicaPage) throw raError('RA_ERR_CONTROL', 'this owner does not serve replica-page');
      const r = await target.replicaPage(req.pageId);
      return { image: r.image.toString('base64'), lsn: r.lsn, replica: r.replica };
    }
    case 'page-states':
      if (!target.pageStates) throw raError('RA_ERR_CONTROL', 'this owner does not serve page-states');
      return { pages: await target.pageStates(req.pageIds) };
    case 'replica-pages': {
      if (!target.replicaPages) throw raError('RA_ERR_CONTROL', 'this owner does not serve replica-pages');
      const pages = await target.replicaPages(req.pageIds);
      return { pages: pages.map((p) => (p.error ? p : { pageId: p.pageId, image: p.image.toString('base64'), lsn: p.lsn, replica: p.replica })) };
    }
    case 'write-pages':
      if (!target.repairPages) throw raError('RA_ERR_CONTROL', 'this owner does not serve write-pages');
      return { repairs: await target.repairPages(req.pages.map((p) => ({ pageId: p.pageId, ...(p.image === undefined ? {} : { image: Buffer.from(p.image, 'base64') }), ...asOf(p.asOfLsn) }))) };
    case 'lease':
      if (!target.grantLease) throw raError('RA_ERR_CONTROL', 'this owner does not take lease grants');
      return { lease: target.grantLease(req.epoch, req.untilNs) };
    case 'drop-caches':
      if (!target.dropCaches) throw raError('RA_ERR_CONTROL', 'this owner does not serve drop-caches');
      return { dropped: target.dropCaches() };
    case 'actions':
      return { actions: target.appActions?.() ?? [] };
    case 'app-action':
      if (!target.runAppAction) throw raError('RA_ERR_CONTROL', 'this owner runs no application actions');
      return { result: (await target.runAppAction(req.name, req.phase, req.options, req.timeoutMs)) ?? null };
    case 'write-page':
      return { repair: await target.repairPage(req.pageId, req.image === undefined ? undefined : Buffer.from(req.image, 'base64'), req.asOfLsn) };
  }
}

/**
 * Serves `target` on `<dir>/run/control.sock`; the caller holds the store's lock, so a socket
 * file left there is a dead owner's (kill -9) and is replaced. Returns null (and logs why) when
 * the socket cannot be served: the store works without it, only the agent cannot reach it.
 */
export async function serveControl(target: ControlTarget, dir: string, log?: Logger): Promise<ControlServer | null> {
  const file = controlSocketOf(path.resolve(dir));
  const sockets = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => undefined);
    const lines = new LineSplitter();
    let chain = Promise.resolve();
    const reply = (body: Record<string, unknown>) => {
      if (!sock.destroyed) sock.write(JSON.stringify(body) + '\n');
    };
    sock.setEncoding('utf8');
    let ended = false;
    sock.on('data', (chunk: string) => {
      if (ended) return;
      const refuse = (message: string) => {
        reply({ ok: false, code: 'RA_ERR_CONTROL', message });
        sock.end();
        ended = true;
      };
      for (const line of lines.push(chunk)) {
        const req = line.length > MAX_LINE ? `request longer than ${MAX_LINE} bytes` : parseRequest(line);
        if (typeof req === 'string') return refuse(req);
        // In order, one at a time per connection; but `replica-pages`, which changes nothing
        // here, starts at once (beside a batch's install of the pages fetched before), its
        // answer sent in its turn.
        const early = req.op === 'replica-pages' ? handle(target, req) : null;
        early?.catch(() => undefined);
        chain = chain.then(async () => {
          try {
            reply({ ok: true, ...(await (early ?? handle(target, req))) });
          } catch (err) {
            reply({ ok: false, code: isRaError(err) ? err.code : 'RA_ERR_CONTROL', message: describeError(err) });
          }
        });
      }
      if (lines.pending > MAX_LINE) refuse(`request longer than ${MAX_LINE} bytes`);
    });
  });
  let runDir: FileHandle | null = null;
  let address = file;
  try {
    runDir = await openSocketDir(path.dirname(file));
    address = socketAddress(runDir, file);
    await unlink(address).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
    // A socket an older version left in the store directory itself.
    await unlink(path.join(path.resolve(dir), CONTROL_SOCKET)).catch(() => undefined);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(address, () => {
        server.off('error', reject);
        resolve();
      });
    });
    // Not what keeps others out (run/ is), but the socket should not look open either.
    await chmod(address, PRIVATE_FILE_MODE);
  } catch (err) {
    server.close();
    await runDir?.close().catch(() => undefined);
    log?.warn({ path: file, err: describeError(err) }, 'cannot serve the store control socket; the agent cannot checkpoint or repair this store while it is open');
    return null;
  }
  server.unref();
  server.on('error', (err) => log?.warn({ err: describeError(err) }, 'control socket error'));
  return {
    path: file,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await unlink(address).catch(() => undefined);
      await runDir?.close().catch(() => undefined);
    },
  };
}

/**
 * Makes and opens the socket's directory: created 0700; an existing one must be a real
 * directory (not a symlink) of this process's user (or, for root, of the store's owner, to
 * whom root gives the one it makes: see ownerFor), and is tightened to 0700 through the handle.
 * The socket is then bound through the handle (socketAddress), so it lands in the directory
 * checked here even if the path were swapped meanwhile.
 */
async function openSocketDir(runDir: string): Promise<FileHandle> {
  const made = await mkdir(runDir, { mode: PRIVATE_DIR_MODE }).then(
    () => true,
    (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
      return false;
    },
  );
  const h = await open(runDir, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  try {
    const owner = await ownerFor(path.dirname(runDir));
    if (made && owner) await h.chown(owner.uid, owner.gid);
    const st = await h.stat();
    const euid = process.geteuid?.();
    if (euid !== undefined && st.uid !== euid && st.uid !== owner?.uid) {
      throw raError('RA_ERR_CONTROL', `${runDir} belongs to uid ${st.uid}, not to this process's user (uid ${euid}); remove it so the socket can be made private`);
    }
    if ((st.mode & 0o077) !== 0) await h.chmod(PRIVATE_DIR_MODE);
    return h;
  } catch (err) {
    await h.close();
    throw err;
  }
}

/**
 * Where to bind: through /proc/self/fd/N of the opened directory, which is both exactly the
 * directory checked and short whatever the store path (sun_path holds 107 bytes); the plain path
 * where /proc is not mounted.
 */
function socketAddress(runDir: FileHandle, file: string): string {
  if (existsSync('/proc/self/fd')) return `/proc/self/fd/${runDir.fd}/${CONTROL_SOCKET}`;
  if (Buffer.byteLength(file) > MAX_SOCKET_PATH) {
    throw raError('RA_ERR_CONTROL', `control socket path ${file} is longer than ${MAX_SOCKET_PATH} bytes and /proc is not mounted to shorten it`);
  }
  return file;
}
