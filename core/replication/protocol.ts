/**
 * The replication stream between a store's owner (the primary) and a replica
 * (plugins/replication/DESIGN.md, "The stream"): a mutual shared-secret handshake on a TCP
 * socket, then frames (frames.ts), each sealed with AES-256-GCM under keys the handshake derives
 * (seal.ts), both ways through a `ReplicationChannel`. Generic: it knows
 * epochs, LSNs, rolling checksums and page ids, never what a record or a page holds.
 *
 *   primary:  net.createServer(async (sock) => { const ch = await openChannel(sock, { role: 'primary', secret }); … })
 *   replica:  const ch = await connectChannel({ host, port, secret });
 *             ch.send(helloFrame({ epoch, lsn, rolling, id }));
 *             for (;;) { const f = await ch.next(); … }
 *
 * The handshake, each side at once (the secret never on the wire):
 *
 *   1. 40 bytes: u32 magic 0x53484152 (`RAHS`), u16 version 2, u8 role (1 primary, 2 replica),
 *      u8 reserved, 32 random bytes (its nonce);
 *   2. 32 bytes: HMAC-SHA256(secret, role name ‖ own nonce ‖ peer's nonce), its proof;
 *   3. 1 byte: its verdict on the peer's proof (compared in constant time): 1 accepted, 0 refused.
 *
 * Both proofs bind both nonces and the prover's role, so a proof can be neither replayed on
 * another connection nor reflected back at its maker. A side proceeds only when it accepted the
 * peer and the peer accepted it; otherwise it closes with RA_ERR_REPL_AUTH, having read nothing
 * but the handshake (a peer that fails is told so by the verdict byte: "authentication failed").
 * The whole handshake must finish within `timeoutMs` (5 s by default); one that breaks or times out
 * fails with RA_ERR_REPL_PROTOCOL, a connection failure to retry, not a refusal. Both ends then derive the
 * connection's two keys from the secret and both nonces (seal.ts `deriveKeys`); every frame after
 * the handshake is sealed. Version 1 (frames in the clear) is refused by name.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import net from 'node:net';
import { describeError, isErrorCode, raError, type ErrorCode, type RecoveryAgentError } from '../errors.js';
import { readU32, readU64 } from '../bytes.js';
import { DEFAULT_MAX_PAYLOAD, FrameType, MAX_PAYLOAD_FROM_REPLICA, decodeFrame, encodeFrame, frameTypeName, type Frame, type FrameFields } from './frames.js';
import { FrameOpener, FrameSealer, deriveKeys, type SessionKeys } from './seal.js';
import './errors.js';
import { MIN_SECRET_BYTES } from './limits.js';

export * from './frames.js';
export * from './seal.js';

export const HANDSHAKE_MAGIC = 0x53484152; // "RAHS"
/** 2: frames sealed after the handshake (seal.ts). 1 sent them in the clear, and is refused. */
export const HANDSHAKE_VERSION = 2;
export const HANDSHAKE_TIMEOUT_MS = 5000;
export { MIN_SECRET_BYTES } from './limits.js';
const kNonce = 32;
const kHello = 8 + kNonce;
const kProof = 32;

export type ReplicationRole = 'primary' | 'replica';
const roleCode: Record<ReplicationRole, number> = { primary: 1, replica: 2 };

export interface HandshakeOptions {
  role: ReplicationRole;
  /** The shared secret (a string is taken as UTF-8). */
  secret: string | Uint8Array;
  /** Time allowed for the whole handshake. Default 5000 ms. */
  timeoutMs?: number;
}

export interface ChannelOptions extends HandshakeOptions {
  /** Bound on a received frame's payload. Default: 1 MiB at the primary (MAX_PAYLOAD_FROM_REPLICA), 64 MiB at the replica. */
  maxPayload?: number;
}

function secretBytes(secret: string | Uint8Array): Buffer {
  const b = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : Buffer.from(secret);
  if (b.byteLength < MIN_SECRET_BYTES) throw raError('RA_ERR_REPL_AUTH', `the replication secret must be at least ${MIN_SECRET_BYTES} bytes (got ${b.byteLength})`);
  return b;
}

function proof(secret: Buffer, role: ReplicationRole, own: Buffer, peer: Buffer): Buffer {
  return createHmac('sha256', secret).update(role).update(own).update(peer).digest();
}

/**
 * Runs the handshake on a connected socket. Resolves, with this end's keys for the connection,
 * once both sides accepted each other; the socket is then paused with nothing read past the
 * handshake (wrap it in a ReplicationChannel with those keys).
 * Rejects with RA_ERR_REPL_AUTH (the socket destroyed) when either side refuses or the peer is
 * not a replication peer of the other role; with RA_ERR_REPL_PROTOCOL (a connection failure, not
 * a refusal) when the connection closes or the handshake does not finish in time.
 */
export async function handshake(sock: net.Socket, opts: HandshakeOptions): Promise<SessionKeys> {
  const secret = secretBytes(opts.secret);
  const timeoutMs = opts.timeoutMs ?? HANDSHAKE_TIMEOUT_MS;
  const peer = describePeer(sock);
  let timedOut = false;
  let sockError: Error | null = null;
  const onError = (err: Error) => {
    sockError ??= err;
  };
  sock.on('error', onError);
  sock.pause();
  const timer = setTimeout(() => {
    timedOut = true;
    sock.destroy();
  }, timeoutMs);
  const fail = (message: string): RecoveryAgentError => raError('RA_ERR_REPL_AUTH', `replication handshake with ${peer}: ${message}`, { details: { peer } });
  // A connection that breaks or stalls mid-handshake says nothing about the secret: it is a
  // connection failure (the caller retries quietly), not a refusal (a P1 for an operator).
  const broke = (message: string): RecoveryAgentError => raError('RA_ERR_REPL_PROTOCOL', `replication handshake with ${peer}: ${message}`, { details: { peer, handshake: true } });
  // Reads exactly n bytes. What is buffered is taken whole (`read()`, not `read(n)`: with fewer
  // than n bytes buffered and the peer's FIN behind them, `read(n)` returns null and a new
  // 'readable' listener fires at once, a loop that starves the timers, the deadline's among them);
  // bytes past n go back (`unshift`): nothing is read past the handshake.
  const read = async (n: number, what: string): Promise<Buffer> => {
    const got: Buffer[] = [];
    let have = 0;
    for (;;) {
      const chunk = sock.read() as Buffer | null;
      if (chunk !== null) {
        got.push(chunk);
        have += chunk.byteLength;
        if (have < n) continue;
        const all = Buffer.concat(got, have);
        if (have > n) sock.unshift(all.subarray(n));
        return all.subarray(0, n);
      }
      if (sock.destroyed || sock.readableEnded) {
        if (timedOut) throw broke(`not finished within ${timeoutMs} ms`);
        throw broke(`the peer closed the connection before sending its ${what}${sockError ? ` (${describeError(sockError)})` : ''}`);
      }
      await new Promise<void>((resolve) => {
        const done = () => {
          sock.off('readable', done);
          sock.off('close', done);
          sock.off('end', done);
          resolve();
        };
        sock.on('readable', done);
        sock.on('close', done);
        sock.on('end', done);
      });
    }
  };
  try {
    const own = randomBytes(kNonce);
    const hello = Buffer.alloc(kHello);
    hello.writeUInt32LE(HANDSHAKE_MAGIC, 0);
    hello.writeUInt16LE(HANDSHAKE_VERSION, 4);
    hello[6] = roleCode[opts.role];
    own.copy(hello, 8);
    sock.write(hello);
    const theirs = await read(kHello, 'greeting');
    if (readU32(theirs, 0) !== HANDSHAKE_MAGIC) throw fail('the peer is not a recovery-agent replication peer (bad greeting)');
    const version = theirs.readUInt16LE(4);
    if (version === 1) throw fail(`the peer speaks handshake version 1 (frames in the clear), this end ${HANDSHAKE_VERSION} (sealed frames): upgrade the peer`);
    if (version !== HANDSHAKE_VERSION) throw fail(`the peer speaks handshake version ${version}, not ${HANDSHAKE_VERSION}`);
    const peerRole: ReplicationRole = opts.role === 'primary' ? 'replica' : 'primary';
    if (theirs[6] !== roleCode[peerRole]) throw fail(`the peer is not a ${peerRole} (role code ${theirs[6]})`);
    const peerNonce = Buffer.from(theirs.subarray(8, 8 + kNonce));
    if (peerNonce.equals(own)) throw fail('the peer echoed our nonce');
    // The connecting side (the replica) proves first, and the primary proves itself only to a
    // replica it has accepted: a listener reachable by anyone never hands a stranger an HMAC of
    // the secret over a nonce the stranger chose (an offline guessing oracle).
    const checkTheirs = async (): Promise<void> => {
      const theirProof = await read(kProof, 'proof');
      const ok = timingSafeEqual(theirProof, proof(secret, peerRole, peerNonce, own));
      sock.write(Buffer.of(ok ? 1 : 0));
      if (!ok) throw fail('authentication failed: the peer does not know the secret');
    };
    const proveOurs = async (): Promise<void> => {
      sock.write(proof(secret, opts.role, own, peerNonce));
      const verdict = await read(1, 'verdict');
      if (verdict[0] !== 1) throw fail('the peer refused us: authentication failed (the two ends have different secrets)');
    };
    if (opts.role === 'replica') {
      await proveOurs();
      await checkTheirs();
    } else {
      await checkTheirs();
      await proveOurs();
    }
    return opts.role === 'primary' ? deriveKeys(secret, 'primary', own, peerNonce) : deriveKeys(secret, 'replica', peerNonce, own);
  } catch (err) {
    // Let the verdict byte go out before the socket closes.
    sock.end();
    setTimeout(() => sock.destroy(), 1000).unref();
    throw err;
  } finally {
    clearTimeout(timer);
    sock.off('error', onError);
  }
}

function describePeer(sock: net.Socket): string {
  return sock.remoteAddress ? `${sock.remoteAddress}:${sock.remotePort}` : 'a local peer';
}

/** The replication codes a peer's `error` frame may carry through to the caller. */
const kPassedCodes = new Set<string>(['RA_ERR_REPL_AUTH', 'RA_ERR_REPL_FRAME', 'RA_ERR_REPL_EPOCH', 'RA_ERR_REPL_DIVERGED', 'RA_ERR_REPL_PROTOCOL']);
/** Frames queued before the socket is paused until the consumer catches up. */
const kQueueHigh = 64;

/**
 * Frames both ways on an authenticated socket, sealed (seal.ts). `next()` yields received frames
 * in order; a peer's `error` frame, a malformed frame, one that fails authentication or the
 * connection closing rejects it (and every later call) with a catalogued error. A frame that
 * fails to open or decode is answered with an `error` frame and the connection is closed: nothing
 * of it nor after it is read.
 */
export class ReplicationChannel {
  /** The peer's address, for messages and status. */
  readonly peer: string;
  private readonly sealer: FrameSealer;
  private readonly opener: FrameOpener;
  private readonly queue: Frame[] = [];
  private readonly waiters: Array<{ resolve: (f: Frame) => void; reject: (e: Error) => void }> = [];
  private ended: Error | null = null;
  private readonly closedPromise: Promise<Error | null>;
  private markClosed!: (e: Error | null) => void;

  constructor(
    private readonly sock: net.Socket,
    /** This end's keys, from the handshake. */
    keys: SessionKeys,
    /** This end's epoch, stamped on the `error` frame it sends when a received one is bad. */
    public epoch = 0,
    private readonly maxPayload = DEFAULT_MAX_PAYLOAD,
  ) {
    this.peer = describePeer(sock);
    this.sealer = new FrameSealer(keys.send);
    this.opener = new FrameOpener(keys.receive, maxPayload);
    this.closedPromise = new Promise((resolve) => (this.markClosed = resolve));
    sock.setNoDelay(true);
    sock.on('error', (err) => this.end(raError('RA_ERR_REPL_PROTOCOL', `replication connection with ${this.peer} failed: ${describeError(err)}`, { cause: err })));
    sock.on('close', () => {
      this.end(raError('RA_ERR_REPL_PROTOCOL', `replication connection with ${this.peer} closed`));
      this.markClosed(this.ended);
    });
    sock.on('data', (chunk: Buffer) => this.onData(chunk));
    sock.resume();
  }

  /** Sends a frame; false when the socket's buffer is full (wait for `drained()`), or it is closed. */
  send(f: FrameFields): boolean {
    if (this.ended || this.sock.destroyed) return false;
    return this.writeSealed(encodeFrame(f), false);
  }

  /** Seals an encoded frame and writes its three pieces in one writev; `end` closes after it. */
  private writeSealed(frame: Buffer, end: boolean): boolean {
    const [head, body, tag] = this.sealer.seal(frame);
    this.sock.cork();
    this.sock.write(head);
    this.sock.write(body);
    const ok = end ? (this.sock.end(tag), false) : this.sock.write(tag);
    process.nextTick(() => this.sock.uncork());
    return ok;
  }

  /** Bytes sent and still queued on this end (a slow peer's backlog). */
  get queuedBytes(): number {
    return this.sock.writableLength;
  }

  /** Resolves when the socket's send buffer has room again (or it closed). */
  drained(): Promise<void> {
    if (!this.sock.writableNeedDrain || this.sock.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.sock.off('drain', done);
        this.sock.off('close', done);
        resolve();
      };
      this.sock.on('drain', done);
      this.sock.on('close', done);
    });
  }

  /** The next received frame, in order. */
  next(): Promise<Frame> {
    const f = this.queue.shift();
    if (f) {
      if (this.queue.length < kQueueHigh / 2 && this.sock.isPaused() && !this.ended) this.sock.resume();
      return Promise.resolve(f);
    }
    if (this.ended) return Promise.reject(this.ended);
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** Why the channel ended, or null while it is open. */
  get failure(): Error | null {
    return this.ended;
  }

  /** Resolves once the socket has closed, with why the channel ended. */
  get closed(): Promise<Error | null> {
    return this.closedPromise;
  }

  /**
   * Tells the peer why (an `error` frame, with `details` when given: what the peer acts on, e.g. a
   * divergence's fork LSN), then closes. Later `next()` calls reject with that error.
   */
  fail(code: ErrorCode, message: string, details?: Record<string, unknown>): void {
    if (!this.ended && !this.sock.destroyed) this.writeSealed(encodeFrame(errorFrame(this.epoch, code, message, details)), true);
    this.end(raError(code, message, { details: { ...details, peer: this.peer } }));
    setTimeout(() => this.sock.destroy(), 1000).unref();
  }

  /** Closes the connection without a reason. */
  close(): void {
    this.end(raError('RA_ERR_REPL_PROTOCOL', `replication connection with ${this.peer} closed by this end`));
    this.sock.destroy();
  }

  private onData(chunk: Buffer): void {
    if (this.ended) return;
    let frames: Frame[];
    try {
      frames = this.opener.push(chunk).map((b) => decodeFrame(b, this.maxPayload));
    } catch (err) {
      const e = err as RecoveryAgentError;
      this.fail(e.code, `${e.message} (from ${this.peer})`);
      return;
    }
    for (const f of frames) {
      if (f.type === FrameType.error) {
        const { code, message, details } = parseError(f);
        const passed = kPassedCodes.has(code) && isErrorCode(code) ? code : 'RA_ERR_REPL_PROTOCOL';
        this.end(raError(passed, `replication peer ${this.peer} refused: ${message}`, { details: { ...details, peer: this.peer, peerCode: code } }));
        this.sock.destroy();
        return;
      }
      const w = this.waiters.shift();
      if (w) w.resolve(f);
      else this.queue.push(f);
    }
    if (this.queue.length >= kQueueHigh) this.sock.pause();
  }

  private end(err: Error): void {
    if (this.ended) return;
    this.ended = err;
    for (const w of this.waiters.splice(0)) w.reject(err);
  }
}

/** Handshake on an accepted (or connected) socket, then a channel on it. */
export async function openChannel(sock: net.Socket, opts: ChannelOptions & { epoch?: number }): Promise<ReplicationChannel> {
  const keys = await handshake(sock, opts);
  return new ReplicationChannel(sock, keys, opts.epoch ?? 0, opts.maxPayload ?? (opts.role === 'primary' ? MAX_PAYLOAD_FROM_REPLICA : DEFAULT_MAX_PAYLOAD));
}

/** A replica's side: connects to the primary at `host:port`, handshakes, and returns the channel. */
/**
 * Connects to a primary and runs the handshake. `signal` abandons it at any point (the socket is
 * destroyed): a replica told to stop or to follow another primary must not wait out the
 * handshake's time limit on a primary that is frozen or gone (it did: 4–5 s of a failover).
 */
export async function connectChannel(opts: Omit<ChannelOptions, 'role'> & { host: string; port: number; epoch?: number; signal?: AbortSignal }): Promise<ReplicationChannel> {
  secretBytes(opts.secret); // a bad secret fails before anything is sent
  const { signal, ...rest } = opts;
  if (signal?.aborted) throw raError('RA_ERR_REPL_PROTOCOL', `connection to the primary at ${opts.host}:${opts.port} abandoned: the replica is stopping`);
  const sock = net.connect({ host: opts.host, port: opts.port });
  const onAbort = (): void => void sock.destroy(raError('RA_ERR_REPL_PROTOCOL', `connection to the primary at ${opts.host}:${opts.port} abandoned: the replica is stopping`));
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await new Promise<void>((resolve, reject) => {
      sock.once('connect', () => {
        sock.off('error', reject);
        resolve();
      });
      sock.once('error', reject);
    }).catch((err: Error) => {
      throw raError('RA_ERR_REPL_PROTOCOL', `cannot connect to the primary at ${opts.host}:${opts.port}: ${describeError(err)}`, { cause: err });
    });
    return await openChannel(sock, { ...rest, role: 'replica' });
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

// ---- the frames' payloads (DESIGN.md "Types")

function u64(v: bigint | number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(v), 0);
  return b;
}

function expectType(f: Frame, type: number, minPayload: number): void {
  if (f.type !== type) throw raError('RA_ERR_REPL_PROTOCOL', `expected a ${frameTypeName(type)} frame, got ${frameTypeName(f.type)}`);
  if (f.payload.byteLength < minPayload) throw raError('RA_ERR_REPL_PROTOCOL', `${frameTypeName(type)} frame with a ${f.payload.byteLength}-byte payload (at least ${minPayload} expected)`);
}

/** A replica's position: its epoch, the end of its durable log, and R at that LSN. */
export interface Hello {
  epoch: number;
  lsn: number;
  rolling: bigint;
  /** The replica's name, for status and logs. */
  id: string;
}

export function helloFrame(h: Hello): FrameFields {
  return { type: FrameType.hello, epoch: h.epoch, endLsn: h.lsn, payload: Buffer.concat([u64(h.rolling), Buffer.from(h.id.slice(0, 200), 'utf8')]) };
}

export function parseHello(f: Frame): Hello {
  expectType(f, FrameType.hello, 8);
  return { epoch: f.epoch, lsn: f.endLsn, rolling: f.payload.readBigUInt64LE(0), id: f.payload.subarray(8).toString('utf8') };
}

/** Records `[start, end)` (their bytes exactly), all in one segment. */
export function walFrame(epoch: number, start: number, bytes: Uint8Array): FrameFields {
  return { type: FrameType.wal, epoch, startLsn: start, endLsn: start + bytes.byteLength, payload: bytes };
}

/** Checks a `wal` frame's range against its payload; returns the payload. */
export function parseWal(f: Frame): Buffer {
  expectType(f, FrameType.wal, 0);
  if (f.endLsn - f.startLsn !== f.payload.byteLength) {
    throw raError('RA_ERR_REPL_PROTOCOL', `wal frame [${f.startLsn}, ${f.endLsn}) carries ${f.payload.byteLength} bytes`);
  }
  return f.payload;
}

export interface Ack {
  /** Every record below it is durable on the replica. */
  durableLsn: number;
  /** Every record below it is applied to the replica's pages. */
  appliedLsn: number;
}

export function ackFrame(epoch: number, a: Ack): FrameFields {
  return { type: FrameType.ack, epoch, startLsn: a.appliedLsn, endLsn: a.durableLsn };
}

export function parseAck(f: Frame): Ack {
  expectType(f, FrameType.ack, 0);
  return { durableLsn: f.endLsn, appliedLsn: f.startLsn };
}

export interface Keepalive {
  /** Every record below it is durable on the primary. */
  flushedLsn: number;
  /** The primary's wall clock, ms since the Unix epoch. */
  timeMs: number;
}

export function keepaliveFrame(epoch: number, k: Keepalive): FrameFields {
  return { type: FrameType.keepalive, epoch, endLsn: k.flushedLsn, payload: u64(k.timeMs) };
}

export function parseKeepalive(f: Frame): Keepalive {
  expectType(f, FrameType.keepalive, 8);
  return { flushedLsn: f.endLsn, timeMs: readU64(f.payload, 0) };
}

export function errorFrame(epoch: number, code: string, message: string, details?: Record<string, unknown>): FrameFields {
  return { type: FrameType.error, epoch, payload: Buffer.from(JSON.stringify({ code, message, ...(details ? { details } : {}) }), 'utf8') };
}

/** An `error` frame's reason; `details` keeps only its number and string fields (the peer's word, not trusted further). */
export function parseError(f: Frame): { code: string; message: string; details?: Record<string, number | string> } {
  try {
    const v = JSON.parse(f.payload.toString('utf8')) as { code?: unknown; message?: unknown; details?: unknown };
    const details: Record<string, number | string> = {};
    if (typeof v.details === 'object' && v.details !== null && !Array.isArray(v.details)) {
      for (const [k, x] of Object.entries(v.details as Record<string, unknown>)) if (typeof x === 'number' || typeof x === 'string') details[k] = x;
    }
    return { code: String(v.code ?? 'RA_ERR_REPL_PROTOCOL'), message: String(v.message ?? 'no reason given'), ...(Object.keys(details).length > 0 ? { details } : {}) };
  } catch {
    return { code: 'RA_ERR_REPL_PROTOCOL', message: `unreadable error frame: ${f.payload.subarray(0, 200).toString('utf8')}` };
  }
}

/** Asks for page `pageId` as of at least `lsn` (repair). */
export function pageRequestFrame(epoch: number, pageId: number, lsn: number): FrameFields {
  const p = Buffer.alloc(4);
  p.writeUInt32LE(pageId, 0);
  return { type: FrameType.pageRequest, epoch, endLsn: lsn, payload: p };
}

export function parsePageRequest(f: Frame): { pageId: number; lsn: number } {
  expectType(f, FrameType.pageRequest, 4);
  return { pageId: readU32(f.payload, 0), lsn: f.endLsn };
}

/** Page `pageId`'s image, whose page LSN is `lsn`. */
export function pageFrame(epoch: number, pageId: number, lsn: number, image: Uint8Array): FrameFields {
  const p = Buffer.alloc(4 + image.byteLength);
  p.writeUInt32LE(pageId, 0);
  p.set(image, 4);
  return { type: FrameType.page, epoch, endLsn: lsn, payload: p };
}

/** Flag of a `page` frame that carries, instead of an image, why the peer cannot give the page. */
export const PAGE_REFUSED_FLAG = 1;

/**
 * The answer to a `page-request` the peer cannot serve (its log does not reach the LSN, its own
 * copy is bad, …): a `page` frame flagged PAGE_REFUSED_FLAG whose payload is the page id, then the
 * reason (UTF-8). A refusal is an answer, not a broken stream: the connection stays up.
 */
export function pageRefusedFrame(epoch: number, pageId: number, reason: string): FrameFields {
  const r = Buffer.from(reason.slice(0, 4000), 'utf8');
  const p = Buffer.alloc(4 + r.byteLength);
  p.writeUInt32LE(pageId, 0);
  p.set(r, 4);
  return { type: FrameType.page, epoch, flags: PAGE_REFUSED_FLAG, payload: p };
}

export function parsePage(f: Frame): { pageId: number; lsn: number; image: Buffer; refused?: string } {
  expectType(f, FrameType.page, 4);
  const pageId = readU32(f.payload, 0);
  if (f.flags & PAGE_REFUSED_FLAG) return { pageId, lsn: 0, image: Buffer.alloc(0), refused: f.payload.subarray(4).toString('utf8') || 'no reason given' };
  return { pageId, lsn: f.endLsn, image: f.payload.subarray(4) };
}
