// The replication stream's protocol (core/replication/): frames, the streaming decoder, the
// rolling checksum, and the mutual shared-secret handshake on real loopback sockets.
import assert from 'node:assert/strict';
import { createDecipheriv, randomBytes } from 'node:crypto';
import net from 'node:net';
import { afterEach, describe, it } from 'node:test';
import { isRaError } from '../../../core/errors.js';
import {
  DEFAULT_MAX_PAYLOAD,
  FRAME_HEADER_SIZE,
  FrameDecoder,
  FrameOpener,
  FrameSealer,
  HANDSHAKE_VERSION,
  MAX_PAYLOAD_FROM_REPLICA,
  FrameType,
  ReplicationChannel,
  ackFrame,
  connectChannel,
  decodeFrame,
  deriveKeys,
  encodeFrame,
  errorFrame,
  helloFrame,
  keepaliveFrame,
  openChannel,
  pageFrame,
  pageRequestFrame,
  parseAck,
  parseHello,
  parseKeepalive,
  parsePage,
  parsePageRequest,
  parseWal,
  roll,
  walFrame,
  type Frame,
  type FrameFields,
} from '../../../core/replication/protocol.js';
import { MAX_PAGE_SIZE } from '../../../plugins/pagestore/format.js';
import { npmXxh3 } from '../../helpers/oracles.js';
import { prng } from '../../helpers/prng.js';

const SECRET = 'correct horse battery staple 1234';
const OTHER = 'incorrect horse battery staple 99';

function sample(): FrameFields[] {
  const rnd = prng(7);
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(rnd() * 256)));
  return [
    helloFrame({ epoch: 3, lsn: 2 ** 40 + 64, rolling: 0xfedcba9876543210n, id: 'replica-a' }),
    walFrame(3, 4096, bytes(5000)),
    ackFrame(3, { durableLsn: 9096, appliedLsn: 4096 }),
    keepaliveFrame(3, { flushedLsn: 9096, timeMs: 1_765_000_000_123 }),
    pageRequestFrame(3, 77, 8000),
    pageFrame(3, 77, 8000, bytes(8192)),
    errorFrame(3, 'RA_ERR_REPL_DIVERGED', 'diverged at 64'),
    walFrame(3, 9096, new Uint8Array(0)),
  ];
}

function sameFrame(got: Frame, want: FrameFields): void {
  assert.equal(got.type, want.type);
  assert.equal(got.epoch, want.epoch);
  assert.equal(got.startLsn, want.startLsn ?? 0);
  assert.equal(got.endLsn, want.endLsn ?? 0);
  assert.deepEqual(Buffer.from(got.payload), Buffer.from(want.payload ?? []));
}

const refusedFrame = (pattern: RegExp) => (err: unknown) => isRaError(err, 'RA_ERR_REPL_FRAME') && pattern.test(err.message);

describe('replication frames', () => {
  it('round-trips every frame type and its payload helpers', () => {
    const frames = sample();
    const dec = new FrameDecoder();
    const got = dec.push(Buffer.concat(frames.map(encodeFrame)));
    assert.equal(got.length, frames.length);
    got.forEach((g, i) => sameFrame(g, frames[i]!));
    assert.deepEqual(parseHello(got[0]!), { epoch: 3, lsn: 2 ** 40 + 64, rolling: 0xfedcba9876543210n, id: 'replica-a' });
    assert.equal(parseWal(got[1]!).byteLength, 5000);
    assert.deepEqual(parseAck(got[2]!), { durableLsn: 9096, appliedLsn: 4096 });
    assert.deepEqual(parseKeepalive(got[3]!), { flushedLsn: 9096, timeMs: 1_765_000_000_123 });
    assert.deepEqual(parsePageRequest(got[4]!), { pageId: 77, lsn: 8000 });
    const page = parsePage(got[5]!);
    assert.equal(page.pageId, 77);
    assert.equal(page.image.byteLength, 8192);
    assert.throws(() => parseAck(got[0]!), (e: unknown) => isRaError(e, 'RA_ERR_REPL_PROTOCOL') && /expected a ack frame, got hello/.test(e.message));
    assert.equal(dec.pending, 0);
  });

  it('decodes the same frames whatever the TCP chunking: byte by byte, random splits, all merged', () => {
    const frames = sample();
    const wire = Buffer.concat(frames.map(encodeFrame));
    const rnd = prng(11);
    for (const mode of ['bytes', 'random', 'merged'] as const) {
      const dec = new FrameDecoder();
      const got: Frame[] = [];
      let at = 0;
      while (at < wire.byteLength) {
        const n = mode === 'bytes' ? 1 : mode === 'merged' ? wire.byteLength : 1 + Math.floor(rnd() * 3000);
        got.push(...dec.push(Buffer.from(wire.subarray(at, at + n))));
        at += n;
      }
      assert.equal(got.length, frames.length, mode);
      got.forEach((g, i) => sameFrame(g, frames[i]!));
    }
  });

  it('refuses a frame with any byte flipped, in the header, the payload or the checksum, and nothing of it gets out', () => {
    const one = encodeFrame(walFrame(1, 128, Buffer.alloc(300, 0xab)));
    for (let at = 0; at < one.byteLength; at++) {
      if (at >= 32 && at < 36) continue; // the length: tested below (a bigger one waits for more bytes)
      const bad = Buffer.from(one);
      bad[at]! ^= 0x10;
      const dec = new FrameDecoder();
      assert.throws(() => dec.push(bad), refusedFrame(/checksum|magic|unknown type/), `byte ${at}`);
      // Dead after a bad frame: a good one after it is not decoded either.
      assert.throws(() => dec.push(one), refusedFrame(/./));
    }
    const shorter = Buffer.from(one);
    shorter.writeUInt32LE(299, 32);
    assert.throws(() => new FrameDecoder().push(shorter), refusedFrame(/fails its checksum/));
  });

  it('refuses an oversized length from the header alone, before any payload arrives', () => {
    const dec = new FrameDecoder(1024);
    const h = encodeFrame(walFrame(1, 64, Buffer.alloc(10))).subarray(0, FRAME_HEADER_SIZE);
    const header = Buffer.from(h);
    header.writeUInt32LE(0xffff_ffff, 32);
    const before = process.memoryUsage().arrayBuffers;
    assert.throws(() => dec.push(header), refusedFrame(/claims a 4294967295-byte payload, over the bound of 1024 bytes/));
    assert.ok(process.memoryUsage().arrayBuffers - before < 1 << 20, 'nothing near the claimed size was allocated');
    // Exactly at the bound is fine.
    assert.equal(new FrameDecoder(1024).push(encodeFrame(walFrame(1, 64, Buffer.alloc(1024)))).length, 1);
  });

  it('folds R as XXH3-64 of R and the record checksum, little-endian (checked against an independent XXH3)', () => {
    let r = 0n;
    const sums = [1n, 0xffff_ffff_ffff_ffffn, 0x0123_4567_89ab_cdefn];
    for (const s of sums) {
      const b = Buffer.alloc(16);
      b.writeBigUInt64LE(r, 0);
      b.writeBigUInt64LE(s, 8);
      const want = npmXxh3([b])[0]!;
      r = roll(r, s);
      assert.equal(r, want);
    }
    assert.notEqual(roll(roll(0n, 1n), 2n), roll(roll(0n, 2n), 1n), 'order matters');
  });
});

describe('replication handshake and channel', () => {
  const cleanup: Array<() => void> = [];
  afterEach(() => {
    for (const c of cleanup.splice(0)) c();
  });

  /** A listening primary; each accepted socket goes to `onSocket`. */
  async function listen(onSocket: (sock: net.Socket) => void): Promise<number> {
    const sockets = new Set<net.Socket>();
    const server = net.createServer((sock) => {
      sockets.add(sock);
      onSocket(sock);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanup.push(() => {
      server.close();
      for (const s of sockets) s.destroy();
    });
    return (server.address() as net.AddressInfo).port;
  }

  /** A primary accepting one replica: the port, and its side of the channel (handled, so a refusal is asserted, not unhandled). */
  async function primaryOn(opts: { secret: string; timeoutMs?: number; maxPayload?: number }): Promise<{ port: number; primary: Promise<ReplicationChannel> }> {
    let accept!: (p: Promise<ReplicationChannel>) => void;
    const primary = new Promise<ReplicationChannel>((resolve) => (accept = resolve as never));
    primary.catch(() => undefined);
    const port = await listen((sock) => {
      const p = openChannel(sock, { role: 'primary', epoch: 1, ...opts });
      p.catch(() => undefined);
      accept(p);
    });
    return { port, primary };
  }

  it('authenticates both ways with the same secret, then carries frames both ways', async () => {
    const { port, primary } = await primaryOn({ secret: SECRET });
    const replica = await connectChannel({ host: '127.0.0.1', port, secret: SECRET });
    cleanup.push(() => replica.close());
    const p = await primary;
    cleanup.push(() => p.close());
    replica.send(helloFrame({ epoch: 1, lsn: 64, rolling: 0n, id: 'r1' }));
    assert.equal(parseHello(await p.next()).id, 'r1');
    const big = Buffer.alloc(3 << 20, 7);
    p.send(walFrame(1, 64, big));
    const w = await replica.next();
    assert.equal(w.type, FrameType.wal);
    assert.ok(parseWal(w).equals(big));
    // A reason sent with fail() reaches the other end under its own code.
    p.fail('RA_ERR_REPL_DIVERGED', 'diverged at 64');
    await assert.rejects(replica.next(), (e: unknown) => isRaError(e, 'RA_ERR_REPL_DIVERGED') && /refused: diverged at 64/.test(e.message));
  });

  it('refuses a wrong secret on either side: both ends fail with RA_ERR_REPL_AUTH and no channel opens', async () => {
    for (const [primarySecret, replicaSecret] of [[SECRET, OTHER], [OTHER, SECRET]]) {
      const { port, primary } = await primaryOn({ secret: primarySecret! });
      await assert.rejects(connectChannel({ host: '127.0.0.1', port, secret: replicaSecret! }), (e: unknown) => isRaError(e, 'RA_ERR_REPL_AUTH') && /authentication failed/.test(e.message));
      await assert.rejects(primary, (e: unknown) => isRaError(e, 'RA_ERR_REPL_AUTH') && /authentication failed/.test(e.message));
    }
  });

  it('an impostor that sends a bad proof and then frames gets refused, and none of its frames is read', async () => {
    const { port, primary } = await primaryOn({ secret: SECRET });
    const sock = net.connect(port, '127.0.0.1');
    const received: Buffer[] = [];
    sock.on('data', (d: Buffer) => received.push(d));
    const greeting = Buffer.alloc(40);
    greeting.writeUInt32LE(0x53484152, 0);
    greeting.writeUInt16LE(HANDSHAKE_VERSION, 4);
    greeting[6] = 2;
    // Greeting, a guessed proof, an accepting verdict and a WAL frame, all at once.
    sock.write(Buffer.concat([greeting, Buffer.alloc(32, 1), Buffer.of(1), encodeFrame(walFrame(1, 64, Buffer.alloc(64)))]));
    await assert.rejects(primary, (e: unknown) => isRaError(e, 'RA_ERR_REPL_AUTH') && /does not know the secret/.test(e.message));
    await new Promise<void>((resolve) => sock.on('close', () => resolve()));
    const all = Buffer.concat(received);
    // No proof from the primary to a peer it has not accepted: an HMAC of the secret over a nonce the
    // stranger chose would let it guess the secret offline.
    assert.equal(all.byteLength, 40 + 1, 'the primary sent its greeting and its verdict, no proof, nothing more');
    assert.equal(all[all.byteLength - 1], 0, 'verdict: refused');
  });

  it('gives up on a peer that does not finish the handshake in time', async () => {
    const { port, primary } = await primaryOn({ secret: SECRET, timeoutMs: 200 });
    const sock = net.connect(port, '127.0.0.1');
    cleanup.push(() => sock.destroy());
    sock.on('error', () => undefined);
    await new Promise((r) => sock.once('connect', r));
    const t0 = Date.now();
    await assert.rejects(primary, (e: unknown) => isRaError(e, 'RA_ERR_REPL_PROTOCOL') && /not finished within 200 ms/.test(e.message));
    assert.ok(Date.now() - t0 < 2000);
  });

  it('a replica abandons a handshake with a silent primary (frozen: the kernel accepted, nobody answers) at once when told to stop', async () => {
    const port = await listen(() => undefined); // accepts, never greets
    const stop = new AbortController();
    const t0 = Date.now();
    const pending = connectChannel({ host: '127.0.0.1', port, secret: SECRET, signal: stop.signal });
    setTimeout(() => stop.abort(), 100);
    await assert.rejects(pending, (e: unknown) => isRaError(e, 'RA_ERR_REPL_PROTOCOL'));
    // Before, only the handshake's time limit ended it (seconds): a failover waited that out.
    assert.ok(Date.now() - t0 < 1000, `${Date.now() - t0} ms`);
    await assert.rejects(connectChannel({ host: '127.0.0.1', port, secret: SECRET, signal: stop.signal }), /abandoned/);
  });

  it('refuses a peer of the same role, and a secret shorter than 16 bytes', async () => {
    const { port, primary } = await primaryOn({ secret: SECRET });
    const sock = net.connect(port, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    await assert.rejects(openChannel(sock, { role: 'primary', secret: SECRET }), (e: unknown) => isRaError(e, 'RA_ERR_REPL_AUTH') && /not a replica/.test(e.message));
    await assert.rejects(primary, (e: unknown) => isRaError(e, 'RA_ERR_REPL_AUTH') && /not a replica|not a primary/.test(e.message));
    await assert.rejects(connectChannel({ host: '127.0.0.1', port, secret: 'short' }), (e: unknown) => isRaError(e, 'RA_ERR_REPL_AUTH') && /at least 16 bytes/.test(e.message));
  });

  it('a frame with a bad checksum or an oversized length, sealed properly, closes the channel with an error to the sender', async () => {
    for (const corrupt of ['checksum', 'length'] as const) {
      const { port, primary } = await primaryOn({ secret: SECRET, maxPayload: 1 << 16 });
      const replica = await connectChannel({ host: '127.0.0.1', port, secret: SECRET });
      const p = await primary;
      cleanup.push(() => p.close(), () => replica.close());
      const bad = encodeFrame(helloFrame({ epoch: 1, lsn: 64, rolling: 0n, id: 'x' }));
      if (corrupt === 'checksum') bad[bad.byteLength - 1]! ^= 1;
      else bad.writeUInt32LE(1 << 30, 32);
      // Sealed with the channel's own key and counter, written past it, as a broken peer would:
      // the inner frame's own checks still hold under the seal.
      const inner = replica as unknown as { sock: net.Socket; sealer: FrameSealer };
      for (const piece of inner.sealer.seal(bad)) inner.sock.write(piece);
      await assert.rejects(p.next(), refusedFrame(corrupt === 'checksum' ? /fails its checksum/ : /over the bound/));
      await assert.rejects(replica.next(), (e: unknown) => isRaError(e, 'RA_ERR_REPL_FRAME') && /refused/.test(e.message));
    }
  });

  it('a frame not sealed by the peer (a plain frame, or one byte flipped on the way) fails authentication at either end', async () => {
    for (const attack of ['plain', 'flip'] as const) {
      const { port, primary } = await primaryOn({ secret: SECRET });
      const replica = await connectChannel({ host: '127.0.0.1', port, secret: SECRET });
      const p = await primary;
      cleanup.push(() => p.close(), () => replica.close());
      const inner = p as unknown as { sock: net.Socket; sealer: FrameSealer };
      const good = encodeFrame(keepaliveFrame(1, { flushedLsn: 64, timeMs: 1 }));
      if (attack === 'plain') inner.sock.write(good);
      else {
        const pieces = inner.sealer.seal(good);
        pieces[1][10]! ^= 0x01;
        for (const piece of pieces) inner.sock.write(piece);
      }
      // A plain frame's magic, read as a sealed length, is over the bound: refused before more is read.
      const why = attack === 'plain' ? /sealed replication frame claims 1347567954 bytes, over the bound/ : /frame failed authentication/;
      await assert.rejects(replica.next(), refusedFrame(why));
      // The primary is told why, under the code.
      await assert.rejects(p.next(), (e: unknown) => isRaError(e, 'RA_ERR_REPL_FRAME') && why.test(e.message));
    }
  });

  it('refuses a version 1 peer (frames in the clear) by name', async () => {
    const { port, primary } = await primaryOn({ secret: SECRET });
    const sock = net.connect(port, '127.0.0.1');
    cleanup.push(() => sock.destroy());
    sock.on('error', () => undefined);
    const greeting = Buffer.alloc(40);
    greeting.writeUInt32LE(0x53484152, 0);
    greeting.writeUInt16LE(1, 4);
    greeting[6] = 2;
    randomBytes(32).copy(greeting, 8);
    sock.write(greeting);
    await assert.rejects(primary, (e: unknown) => isRaError(e, 'RA_ERR_REPL_AUTH') && /version 1 \(frames in the clear\).*upgrade the peer/.test(e.message));
  });
});

describe('sealed frames', () => {
  const pn = randomBytes(32);
  const rn = randomBytes(32);
  const primaryKeys = deriveKeys(Buffer.from(SECRET), 'primary', pn, rn);
  const replicaKeys = deriveKeys(Buffer.from(SECRET), 'replica', pn, rn);
  const wire = (sealer: FrameSealer, frames: FrameFields[]) => frames.map((f) => Buffer.concat(sealer.seal(encodeFrame(f))));

  it('derives one key per direction, the same at both ends, and new ones for new nonces or another secret', () => {
    assert.ok(primaryKeys.send.equals(replicaKeys.receive));
    assert.ok(primaryKeys.receive.equals(replicaKeys.send));
    assert.equal(primaryKeys.send.byteLength, 32);
    assert.ok(!primaryKeys.send.equals(primaryKeys.receive));
    assert.ok(!deriveKeys(Buffer.from(SECRET), 'primary', pn, randomBytes(32)).send.equals(primaryKeys.send));
    assert.ok(!deriveKeys(Buffer.from(OTHER), 'primary', pn, rn).send.equals(primaryKeys.send));
  });

  it('round-trips every frame type whatever the chunking, and nothing of the plaintext is on the wire', () => {
    const frames = sample();
    const bytes = Buffer.concat(wire(new FrameSealer(primaryKeys.send), frames));
    const plain = encodeFrame(frames[1]!).subarray(FRAME_HEADER_SIZE, FRAME_HEADER_SIZE + 64);
    assert.equal(bytes.indexOf(plain), -1, 'a wal payload does not appear on the wire');
    const rnd = prng(5);
    for (const mode of ['bytes', 'random', 'merged'] as const) {
      const opener = new FrameOpener(replicaKeys.receive, DEFAULT_MAX_PAYLOAD);
      const got: Frame[] = [];
      for (let at = 0; at < bytes.byteLength; ) {
        const n = mode === 'bytes' ? 1 : mode === 'merged' ? bytes.byteLength : 1 + Math.floor(rnd() * 3000);
        got.push(...opener.push(Buffer.from(bytes.subarray(at, at + n))).map((b) => decodeFrame(b)));
        at += n;
      }
      assert.equal(got.length, frames.length, mode);
      got.forEach((g, i) => sameFrame(g, frames[i]!));
    }
  });

  it('lays out length, AES-256-GCM with IV 0000 ‖ u64 BE counter, AAD the length, and the tag, as documented', () => {
    const sealer = new FrameSealer(primaryKeys.send);
    const frames = wire(sealer, sample().slice(0, 3));
    const third = frames[2]!;
    assert.equal(third.readUInt32LE(0), third.byteLength - 4);
    const iv = Buffer.alloc(12);
    iv.writeBigUInt64BE(2n, 4);
    const d = createDecipheriv('aes-256-gcm', primaryKeys.send, iv, { authTagLength: 16 });
    d.setAAD(third.subarray(0, 4));
    d.setAuthTag(third.subarray(third.byteLength - 16));
    const plain = Buffer.concat([d.update(third.subarray(4, third.byteLength - 16)), d.final()]);
    assert.ok(plain.equals(encodeFrame(sample()[2]!)));
    assert.equal(sealer.sealed, 3n);
  });

  it('refuses a frame sealed with a wrong key, a flipped bit anywhere, a replay, a reordering and a drop; dead after', () => {
    const frames = sample().slice(0, 4);
    const sealed = wire(new FrameSealer(primaryKeys.send), frames);
    // A bound just above the largest of these frames: a flipped length bit is then a shorter unit, a
    // longer one (reaching into the next frame), or over the bound — refused each way.
    const fresh = () => new FrameOpener(replicaKeys.receive, 8192);
    const auth = refusedFrame(/frame failed authentication/);
    // Wrong key: the other direction's, and another secret's.
    assert.throws(() => new FrameOpener(replicaKeys.send, DEFAULT_MAX_PAYLOAD).push(sealed[0]!), auth);
    assert.throws(() => new FrameOpener(deriveKeys(Buffer.from(OTHER), 'replica', pn, rn).receive, DEFAULT_MAX_PAYLOAD).push(sealed[0]!), auth);
    // Every byte of the first frame flipped in turn (the length: a shorter or longer unit, or over the bound).
    for (let at = 0; at < sealed[0]!.byteLength; at++) {
      const bad = Buffer.from(sealed[0]!);
      bad[at]! ^= 0x04;
      const o = fresh();
      let threw = false;
      try {
        o.push(Buffer.concat([bad, ...sealed.slice(1)]));
      } catch (err) {
        threw = isRaError(err, 'RA_ERR_REPL_FRAME');
      }
      assert.ok(threw, `byte ${at}`);
      assert.throws(() => o.push(sealed[1]!), refusedFrame(/./), 'dead after a refusal');
    }
    // Counter mismatch: replay of frame 0 after it, frame 2 before 1 (reordered), frame 1 dropped.
    const replay = fresh();
    assert.equal(replay.push(sealed[0]!).length, 1);
    assert.throws(() => replay.push(sealed[0]!), auth);
    const reorder = fresh();
    reorder.push(sealed[0]!);
    assert.throws(() => reorder.push(sealed[2]!), auth);
    const drop = fresh();
    assert.throws(() => drop.push(Buffer.concat([sealed[0]!, sealed[2]!])), auth);
    // In order, all open.
    assert.equal(fresh().push(Buffer.concat(sealed)).length, 4);
  });

  it('refuses a sealed length over the bound from its 4 bytes alone, before the body arrives', () => {
    const o = new FrameOpener(replicaKeys.receive, 1024);
    const before = process.memoryUsage().arrayBuffers;
    const len = Buffer.alloc(4);
    len.writeUInt32LE(0xffff_fff0, 0);
    assert.throws(() => o.push(len), refusedFrame(/claims 4294967280 bytes, over the bound of 1088 bytes/));
    assert.ok(process.memoryUsage().arrayBuffers - before < 1 << 20, 'nothing near the claimed size was allocated');
    // Exactly at the bound is fine; too short to hold a frame is not.
    const max = Buffer.concat(new FrameSealer(primaryKeys.send).seal(encodeFrame(walFrame(1, 64, Buffer.alloc(1024)))));
    assert.equal(new FrameOpener(replicaKeys.receive, 1024).push(max).length, 1);
    len.writeUInt32LE(20, 0);
    assert.throws(() => new FrameOpener(replicaKeys.receive, 1024).push(len), refusedFrame(/too short to hold a frame/));
  });

  it("bounds a replica's frames at the primary above the largest page frame the store allows", () => {
    assert.ok(MAX_PAYLOAD_FROM_REPLICA >= 4 + MAX_PAGE_SIZE, `${MAX_PAYLOAD_FROM_REPLICA} < page frame of ${4 + MAX_PAGE_SIZE}`);
    assert.ok(MAX_PAYLOAD_FROM_REPLICA < DEFAULT_MAX_PAYLOAD);
  });
});
