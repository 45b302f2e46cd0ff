/**
 * The base copy's frames (plugins/replication/DESIGN.md, "A new replica"): how a new or
 * far-behind replica gets a whole store from its primary over the replication channel, before it
 * streams. Generic like the rest of core/replication: pages are opaque images, log bytes opaque
 * bytes, the copy's description an engine's JSON.
 *
 *   replica → primary  base-request   (instead of `hello`; payload: the replica's id)
 *   primary → replica  base-begin     startLsn: the checkpoint's redo LSN, endLsn: its LSN, payload: the engine's description
 *                      base-page …    payload: u32 first page id, u32 count, the images
 *                      base-wal …     raw log bytes [startLsn, endLsn) of one segment
 *                      base-end       endLsn: the LSN the copy is consistent from
 *
 * Kept apart from protocol.ts so that file's framing can change without touching this one.
 */
import { raError } from '../errors.js';
import { FrameType, frameTypeName, type Frame, type FrameFields } from './frames.js';
import './errors.js';

function expect(f: Frame, type: number, minPayload: number): void {
  if (f.type !== type) throw raError('RA_ERR_REPL_PROTOCOL', `expected a ${frameTypeName(type)} frame, got ${frameTypeName(f.type)}`);
  if (f.payload.byteLength < minPayload) throw raError('RA_ERR_REPL_PROTOCOL', `${frameTypeName(type)} frame with a ${f.payload.byteLength}-byte payload (at least ${minPayload} expected)`);
}

export function baseRequestFrame(epoch: number, id: string): FrameFields {
  return { type: FrameType.baseRequest, epoch, payload: Buffer.from(id.slice(0, 200), 'utf8') };
}

export function parseBaseRequest(f: Frame): { id: string } {
  expect(f, FrameType.baseRequest, 0);
  return { id: f.payload.toString('utf8') };
}

export interface BaseBegin {
  redoLsn: number;
  checkpointLsn: number;
  /** The engine's description of the copy (geometry, store id, …): JSON. */
  info: Record<string, unknown>;
}

export function baseBeginFrame(epoch: number, b: BaseBegin): FrameFields {
  return { type: FrameType.baseBegin, epoch, startLsn: b.redoLsn, endLsn: b.checkpointLsn, payload: Buffer.from(JSON.stringify(b.info), 'utf8') };
}

export function parseBaseBegin(f: Frame): BaseBegin {
  expect(f, FrameType.baseBegin, 2);
  let info: unknown;
  try {
    info = JSON.parse(f.payload.toString('utf8'));
  } catch {
    info = null;
  }
  if (info === null || typeof info !== 'object' || Array.isArray(info)) throw raError('RA_ERR_REPL_PROTOCOL', 'base-begin frame whose description is not a JSON object');
  return { redoLsn: f.startLsn, checkpointLsn: f.endLsn, info: info as Record<string, unknown> };
}

/** `images` holds `count` whole pages of equal size, pages `first` to `first + count - 1`. */
export function basePageFrame(epoch: number, first: number, count: number, images: Uint8Array): FrameFields {
  const head = Buffer.alloc(8);
  head.writeUInt32LE(first, 0);
  head.writeUInt32LE(count, 4);
  return { type: FrameType.basePage, epoch, payload: Buffer.concat([head, images]) };
}

export function parseBasePage(f: Frame, pageSize: number): { first: number; count: number; images: Buffer } {
  expect(f, FrameType.basePage, 8);
  const first = f.payload.readUInt32LE(0);
  const count = f.payload.readUInt32LE(4);
  const images = f.payload.subarray(8);
  if (images.byteLength !== count * pageSize) throw raError('RA_ERR_REPL_PROTOCOL', `base-page frame of ${count} page(s) carries ${images.byteLength} bytes, not ${count} × ${pageSize}`);
  return { first, count, images };
}

/** Raw log bytes at `start` (a segment's header when `start` is the segment's first LSN). */
export function baseWalFrame(epoch: number, start: number, bytes: Uint8Array): FrameFields {
  return { type: FrameType.baseWal, epoch, startLsn: start, endLsn: start + bytes.byteLength, payload: bytes };
}

export function parseBaseWal(f: Frame): { start: number; bytes: Buffer } {
  expect(f, FrameType.baseWal, 1);
  if (f.endLsn - f.startLsn !== f.payload.byteLength) throw raError('RA_ERR_REPL_PROTOCOL', `base-wal frame [${f.startLsn}, ${f.endLsn}) carries ${f.payload.byteLength} bytes`);
  return { start: f.startLsn, bytes: f.payload };
}

export function baseEndFrame(epoch: number, consistentLsn: number): FrameFields {
  return { type: FrameType.baseEnd, epoch, endLsn: consistentLsn };
}

export function parseBaseEnd(f: Frame): { consistentLsn: number } {
  expect(f, FrameType.baseEnd, 0);
  return { consistentLsn: f.endLsn };
}
