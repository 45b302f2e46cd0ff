/**
 * Sealed frames: what travels after the handshake (plugins/replication/DESIGN.md, "The stream").
 * The handshake proves both ends know the secret; sealing keeps the rest of the connection theirs:
 * nobody on the path can read the WAL, nor forge, alter, replay, reorder, drop or splice a frame
 * (a forged `ack` would make a sync primary acknowledge a commit no replica has).
 *
 * Keys: per connection and per direction, 32 bytes each from HKDF-SHA256 with the secret as input
 * key material, salt = primary nonce ‖ replica nonce (the handshake's), info =
 * "recovery-agent replication v2 primary->replica" or "… replica->primary". Fresh nonces make
 * fresh keys, so a frame from another connection never opens on this one.
 *
 * A sealed frame, one encoded frame (frames.ts, its XXH3 unchanged) in each:
 *
 *    0  u32 L          bytes that follow: the encrypted frame and the tag
 *    4  AES-256-GCM ciphertext of the frame (L − 16 bytes)
 *    …  16-byte GCM tag
 *
 * IV = 4 zero bytes ‖ u64 big-endian frame counter of the direction (0 for the first frame, one
 * more per frame; never sent: both ends count). AAD = the 4 length bytes. A frame that does not
 * open under the key and the counter the receiver expects — altered, forged, replayed, reordered,
 * or one after a dropped frame — fails its tag: RA_ERR_REPL_FRAME "frame failed authentication",
 * nothing of it is returned, and the opener is dead from then on. L is checked against the bound
 * as soon as its 4 bytes arrive, before the body is waited for.
 *
 * Counter: a BigInt; a direction refuses to go past 2^64 − 1 frames rather than reuse an IV
 * (unreachable in practice: 2^64 frames at a million a second is 584,000 years).
 */
import { createCipheriv, createDecipheriv, hkdfSync } from 'node:crypto';
import { readU32 } from '../bytes.js';
import { raError } from '../errors.js';
import { ByteQueue } from './byteQueue.js';
import { FRAME_HEADER_SIZE, FRAME_TRAILER_SIZE } from './frames.js';
import './errors.js';

export const SEAL_LENGTH_SIZE = 4;
export const SEAL_TAG_SIZE = 16;
const kKeyBytes = 32;
const kCounterEnd = 1n << 64n;
const kInfo = { toReplica: 'recovery-agent replication v2 primary->replica', toPrimary: 'recovery-agent replication v2 replica->primary' };

/** One connection's two keys, as one end sees them. */
export interface SessionKeys {
  /** Seals what this end sends. */
  send: Buffer;
  /** Opens what this end receives. */
  receive: Buffer;
}

/** The keys of the connection whose handshake exchanged these nonces, for the end of role `role`. */
export function deriveKeys(secret: Uint8Array, role: 'primary' | 'replica', primaryNonce: Uint8Array, replicaNonce: Uint8Array): SessionKeys {
  const salt = Buffer.concat([primaryNonce, replicaNonce]);
  const toReplica = Buffer.from(hkdfSync('sha256', secret, salt, kInfo.toReplica, kKeyBytes));
  const toPrimary = Buffer.from(hkdfSync('sha256', secret, salt, kInfo.toPrimary, kKeyBytes));
  return role === 'primary' ? { send: toReplica, receive: toPrimary } : { send: toPrimary, receive: toReplica };
}

function ivOf(counter: bigint): Buffer {
  const iv = Buffer.alloc(12);
  iv.writeBigUInt64BE(counter, 4);
  return iv;
}

/** Seals the frames one end sends, in order. */
export class FrameSealer {
  private counter = 0n;

  constructor(private readonly key: Buffer) {}

  /** Frames sealed so far (the next frame's counter). */
  get sealed(): bigint {
    return this.counter;
  }

  /**
   * Seals one encoded frame. Returns the length, the ciphertext and the tag as three buffers to
   * write in order (corked: one writev), so the ciphertext is not copied once more to join them.
   */
  seal(frame: Uint8Array): [Buffer, Buffer, Buffer] {
    const n = this.counter;
    if (n >= kCounterEnd) throw raError('RA_ERR_REPL_PROTOCOL', 'this replication connection sealed 2^64 frames: it must reconnect (new keys) rather than reuse an IV');
    this.counter = n + 1n;
    const head = Buffer.allocUnsafe(SEAL_LENGTH_SIZE);
    head.writeUInt32LE(frame.byteLength + SEAL_TAG_SIZE, 0);
    const c = createCipheriv('aes-256-gcm', this.key, ivOf(n), { authTagLength: SEAL_TAG_SIZE });
    c.setAAD(head);
    const body = c.update(frame);
    c.final(); // GCM: no bytes held back
    return [head, body, c.getAuthTag()];
  }
}

/**
 * Opens the sealed frames one end receives, from the chunks TCP delivers. Returns each frame's
 * encoded bytes (decode them with `decodeFrame`). After it throws it is dead.
 */
export class FrameOpener {
  private readonly queue = new ByteQueue();
  private counter = 0n;
  /** Bytes of the sealed frame whose length has been checked (with the length field), or 0. */
  private need = 0;
  private failed: Error | null = null;
  private readonly maxSealed: number;

  /** `maxPayload`: the bound on an inner frame's payload; the sealed length is bounded to match. */
  constructor(
    private readonly key: Buffer,
    maxPayload: number,
  ) {
    this.maxSealed = FRAME_HEADER_SIZE + maxPayload + FRAME_TRAILER_SIZE + SEAL_TAG_SIZE;
  }

  /** Frames opened so far (the next frame's counter). */
  get opened(): bigint {
    return this.counter;
  }

  /** Adds received bytes; returns the frames they complete, opened, in order. Throws RA_ERR_REPL_FRAME. */
  push(chunk: Uint8Array): Buffer[] {
    if (this.failed) throw this.failed;
    this.queue.push(chunk);
    const out: Buffer[] = [];
    try {
      for (;;) {
        if (this.need === 0) {
          if (this.queue.length < SEAL_LENGTH_SIZE) break;
          this.need = SEAL_LENGTH_SIZE + this.checkLength(readU32(this.queue.peek(SEAL_LENGTH_SIZE), 0));
        }
        if (this.queue.length < this.need) break;
        out.push(this.open(this.queue.take(this.need)));
        this.need = 0;
      }
    } catch (err) {
      this.failed = err as Error;
      this.queue.clear();
      throw err;
    }
    return out;
  }

  private checkLength(len: number): number {
    if (len > this.maxSealed) {
      throw raError('RA_ERR_REPL_FRAME', `sealed replication frame claims ${len} bytes, over the bound of ${this.maxSealed} bytes`, { details: { length: len, max: this.maxSealed } });
    }
    if (len < FRAME_HEADER_SIZE + FRAME_TRAILER_SIZE + SEAL_TAG_SIZE) throw raError('RA_ERR_REPL_FRAME', `sealed replication frame of ${len} bytes, too short to hold a frame: not a replication stream, or out of step`);
    return len;
  }

  private open(b: Buffer): Buffer {
    const n = this.counter;
    if (n >= kCounterEnd) throw raError('RA_ERR_REPL_FRAME', 'the peer sent more than 2^64 sealed frames on one connection');
    this.counter = n + 1n;
    const d = createDecipheriv('aes-256-gcm', this.key, ivOf(n), { authTagLength: SEAL_TAG_SIZE });
    d.setAAD(b.subarray(0, SEAL_LENGTH_SIZE));
    d.setAuthTag(b.subarray(b.byteLength - SEAL_TAG_SIZE));
    const plain = d.update(b.subarray(SEAL_LENGTH_SIZE, b.byteLength - SEAL_TAG_SIZE));
    try {
      d.final();
    } catch {
      throw raError('RA_ERR_REPL_FRAME', `replication frame failed authentication (frame ${n} of the connection): altered, forged, replayed, reordered or following a dropped frame`, { details: { frame: Number(n) } });
    }
    return plain;
  }
}
