/**
 * The store's control socket: how the agent works on a store while an application has it open
 * (it holds the lock, so the agent may not touch the files itself). A Unix domain socket,
 * `control.sock` in the store directory, mode 0600 (only the owner's user may connect).
 *
 * Protocol: one JSON object per line each way; a connection may send several requests and gets
 * the replies in order. Requests:
 *
 *   { "op": "status" }                                  → { "ok": true, "status": StoreStatus }
 *   { "op": "checkpoint" }                              → { "ok": true, "checkpoint": CheckpointStats }
 *   { "op": "read-page", "pageId": N }                  → { "ok": true, "image": base64, "cached": bool, "fault": null | reason }
 *   { "op": "write-page", "pageId": N, "image"?: b64 }  → { "ok": true, "repair": PageRepair }
 *
 * `write-page` is `PageStore.repairPage`: the store writes only an image that verifies (or its
 * own cached copy). A failure is `{ "ok": false, "code": "RA_ERR_…", "message": "…" }`. A line
 * longer than 1 MiB, or one that is not a request, gets an error and the connection is closed.
 */
import { chmod, unlink } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import type { Logger } from 'pino';
import { describeError, isRaError } from '../../core/errors.js';
import type { CheckpointStats, PageRepair, StoreStatus } from './storeTypes.js';

export const CONTROL_SOCKET = 'control.sock';
/** Longest request line accepted. */
export const MAX_LINE = 1 << 20;
/** Linux's sun_path holds 108 bytes, the terminating NUL included. */
const MAX_SOCKET_PATH = 107;

export const controlSocketOf = (dir: string) => path.join(dir, CONTROL_SOCKET);

/** What the socket serves: the store's side of the protocol. */
export interface ControlTarget {
  status(): StoreStatus;
  checkpoint(): Promise<CheckpointStats>;
  readPage(pageId: number): Promise<{ image: Buffer; cached: boolean; fault: string | null }>;
  repairPage(pageId: number, image?: Uint8Array): Promise<PageRepair>;
}

export interface ControlServer {
  readonly path: string;
  close(): Promise<void>;
}

type Request = { op: 'status' | 'checkpoint' } | { op: 'read-page'; pageId: number } | { op: 'write-page'; pageId: number; image?: string };

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
      return { op: r.op };
    case 'read-page':
    case 'write-page':
      if (!Number.isInteger(r.pageId)) return `${r.op} needs an integer "pageId"`;
      if (r.op === 'read-page') return { op: r.op, pageId: r.pageId as number };
      if (r.image !== undefined && typeof r.image !== 'string') return '"image" must be a base64 string';
      return { op: r.op, pageId: r.pageId as number, ...(typeof r.image === 'string' ? { image: r.image } : {}) };
    default:
      return `unknown op ${JSON.stringify(r.op)} (expected status, checkpoint, read-page or write-page)`;
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
    case 'write-page':
      return { repair: await target.repairPage(req.pageId, req.image === undefined ? undefined : Buffer.from(req.image, 'base64')) };
  }
}

/**
 * Serves `target` on `<dir>/control.sock`; the caller holds the store's lock, so a socket file
 * left there is a dead owner's and is replaced. Returns null (and logs why) when the socket
 * cannot be served: the store works without it, only the agent cannot reach it.
 */
export async function serveControl(target: ControlTarget, dir: string, log?: Logger): Promise<ControlServer | null> {
  const file = controlSocketOf(path.resolve(dir));
  if (Buffer.byteLength(file) > MAX_SOCKET_PATH) {
    log?.warn({ path: file }, `control socket path is longer than ${MAX_SOCKET_PATH} bytes; not serving it (the agent cannot checkpoint or repair this store while it is open)`);
    return null;
  }
  const sockets = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => undefined);
    let buffered = '';
    let chain = Promise.resolve();
    const reply = (body: Record<string, unknown>) => {
      if (!sock.destroyed) sock.write(JSON.stringify(body) + '\n');
    };
    sock.setEncoding('utf8');
    let ended = false;
    sock.on('data', (chunk: string) => {
      if (ended) return;
      buffered += chunk;
      if (buffered.length > MAX_LINE && !buffered.includes('\n')) {
        reply({ ok: false, code: 'RA_ERR_CONTROL', message: `request longer than ${MAX_LINE} bytes` });
        sock.end();
        ended = true;
        return;
      }
      for (let nl; (nl = buffered.indexOf('\n')) >= 0; ) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        const req = parseRequest(line);
        if (typeof req === 'string') {
          reply({ ok: false, code: 'RA_ERR_CONTROL', message: req });
          sock.end();
          ended = true;
          return;
        }
        // In order, one at a time per connection.
        chain = chain.then(async () => {
          try {
            reply({ ok: true, ...(await handle(target, req)) });
          } catch (err) {
            reply({ ok: false, code: isRaError(err) ? err.code : 'RA_ERR_CONTROL', message: describeError(err) });
          }
        });
      }
    });
  });
  try {
    await unlink(file).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(file, () => {
        server.off('error', reject);
        resolve();
      });
    });
    await chmod(file, 0o600);
  } catch (err) {
    server.close();
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
      await unlink(file).catch(() => undefined);
    },
  };
}
