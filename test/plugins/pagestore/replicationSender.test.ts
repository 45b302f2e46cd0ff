// The owner's replication sender (#14): a store whose replication.json makes it a primary streams
// its log to a test replica written here (it uses core/replication/protocol.ts, writes what it
// receives to a file and fsyncs it before acknowledging), in async and sync mode; refuses a wrong
// secret, a bad frame, an older epoch and a diverged replica by name, with nothing streamed.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, readdirSync, writeFileSync, writeSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { isRaError } from '../../../core/errors.js';
import {
  FrameType,
  ackFrame,
  connectChannel,
  encodeFrame,
  type FrameSealer,
  helloFrame,
  openChannel,
  parseKeepalive,
  parseWal,
  type ReplicationChannel,
} from '../../../core/replication/protocol.js';
import { ControlClient } from '../../../plugins/pagestore/controlClient.js';
import { PageStore } from '../../../plugins/pagestore/pageStore.js';
import type { ReplicationStatus } from '../../../plugins/pagestore/replicationSender.js';
import { fixture } from '../../helpers/paths.js';
import { tmpStoreDir } from '../../helpers/store.js';
import { until } from '../../helpers/wait.js';

const SECRET = 'a replication secret of some length';
const SEG = 64 * 1024;

function writeConfig(dir: string, extra: Record<string, unknown> = {}): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'replication.json'), JSON.stringify({ role: 'primary', listen: '127.0.0.1:0', secret: SECRET, epoch: 1, keepaliveMs: 50, ...extra }), { mode: 0o600 });
}

async function openPrimary(extra: Record<string, unknown> = {}): Promise<PageStore> {
  const dir = tmpStoreDir('ra-repl-');
  writeConfig(dir, extra);
  return PageStore.open(dir, { create: true, pageCount: 32, pageSize: 4096, segmentSize: SEG, checkpointWalBytes: 1 << 30, checkpointIntervalMs: 0 });
}

async function commit(store: PageStore, i: number): Promise<void> {
  const tx = store.begin();
  await tx.write(1 + (i % 30), (i * 13) % 500, Buffer.from(`commit ${i} `.repeat(1 + (i % 40))));
  await tx.commit();
}

const repl = (s: PageStore): ReplicationStatus => s.status().replication!;

/** `p`, or a failure saying what did not happen within `ms`. */
function within<T>(ms: number, p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)))]).finally(() => clearTimeout(timer));
}

/**
 * The test replica: connects, says hello, appends every `wal` frame's bytes to a file (a u64
 * start LSN, a u32 length, the bytes) and fsyncs before acking its end, unless acks are held.
 */
class TestReplica {
  readonly pieces: Array<{ start: number; bytes: Buffer }> = [];
  durable: number;
  keepalives = 0;
  error: Error | null = null;
  holdAcks = false;
  private fd: number;
  private readonly done: Promise<void>;

  private constructor(
    readonly ch: ReplicationChannel,
    readonly file: string,
    private readonly epoch: number,
    lsn: number,
  ) {
    this.durable = lsn;
    this.fd = openSync(file, 'a');
    this.done = this.run();
  }

  static async connect(port: number, o: { lsn?: number; rolling?: bigint; epoch?: number; secret?: string; file?: string; id?: string } = {}): Promise<TestReplica> {
    const ch = await connectChannel({ host: '127.0.0.1', port, secret: o.secret ?? SECRET });
    const epoch = o.epoch ?? 1;
    ch.send(helloFrame({ epoch, lsn: o.lsn ?? 64, rolling: o.rolling ?? 0n, id: o.id ?? 'test-replica' }));
    return new TestReplica(ch, o.file ?? path.join(path.dirname(tmpStoreDir('ra-replica-')), 'received'), epoch, o.lsn ?? 64);
  }

  private async run(): Promise<void> {
    try {
      for (;;) {
        const f = await this.ch.next();
        if (f.type === FrameType.keepalive) {
          parseKeepalive(f);
          this.keepalives++;
          continue;
        }
        assert.equal(f.type, FrameType.wal);
        const bytes = Buffer.from(parseWal(f));
        assert.ok(f.startLsn >= this.durable, `frames in order (${f.startLsn} after ${this.durable})`);
        const head = Buffer.alloc(12);
        head.writeBigUInt64LE(BigInt(f.startLsn), 0);
        head.writeUInt32LE(bytes.byteLength, 8);
        writeSync(this.fd, Buffer.concat([head, bytes]));
        fsyncSync(this.fd);
        this.pieces.push({ start: f.startLsn, bytes });
        this.durable = f.endLsn;
        if (!this.holdAcks) this.ack();
      }
    } catch (err) {
      this.error = err as Error;
    } finally {
      closeSync(this.fd);
    }
  }

  ack(): void {
    this.ch.send(ackFrame(this.epoch, { durableLsn: this.durable, appliedLsn: 0 }));
  }

  async close(): Promise<void> {
    this.ch.close();
    await this.done;
  }

  async ended(): Promise<Error> {
    await this.done;
    return this.error!;
  }
}

/** Each record of the primary's log from `from` on: its LSN and bytes, straight from the segment files. */
function primaryRecords(dir: string, from: number): Array<{ lsn: number; bytes: Buffer }> {
  const out: Array<{ lsn: number; bytes: Buffer }> = [];
  for (const name of readdirSync(path.join(dir, 'wal')).filter((n) => n.endsWith('.wal')).sort()) {
    const start = parseInt(name.slice(0, 16), 16);
    const b = readFileSync(path.join(dir, 'wal', name));
    for (let p = 64; p + 64 <= b.byteLength; ) {
      const total = b.readUInt32LE(p);
      if (total < 64 || p + total > b.byteLength || b.readBigUInt64LE(p + 8) !== BigInt(start + p)) break;
      if (start + p >= from) out.push({ lsn: start + p, bytes: b.subarray(p, p + total) });
      p += total;
    }
  }
  return out;
}

/** Every record of the primary from `from` is in a received piece at its LSN, byte-equal; nothing else was received. */
function assertSameLog(dir: string, from: number, pieces: Array<{ start: number; bytes: Buffer }>): number {
  const recs = primaryRecords(dir, from);
  let total = 0;
  for (const r of recs) {
    const piece = pieces.find((p) => p.start <= r.lsn && r.lsn < p.start + p.bytes.byteLength);
    assert.ok(piece, `record at ${r.lsn} was received`);
    assert.ok(piece.bytes.subarray(r.lsn - piece.start, r.lsn - piece.start + r.bytes.byteLength).equals(r.bytes), `record at ${r.lsn} byte-equal`);
    total += r.bytes.byteLength;
  }
  assert.equal(pieces.reduce((n, p) => n + p.bytes.byteLength, 0), total, 'exactly the records, nothing more');
  return recs.length;
}

describe('the replication sender', () => {
  const stores: PageStore[] = [];
  const replicas: TestReplica[] = [];
  afterEach(async () => {
    for (const r of replicas.splice(0)) await r.close();
    for (const s of stores.splice(0)) await s.close();
  });
  const primary = async (extra: Record<string, unknown> = {}) => {
    const s = await openPrimary(extra);
    stores.push(s);
    return s;
  };
  const replica = async (port: number, o: Parameters<typeof TestReplica.connect>[1] = {}) => {
    const r = await TestReplica.connect(port, o);
    replicas.push(r);
    return r;
  };

  it('async: catches a replica up from the segment files, then streams every commit live, byte-equal to the log', async () => {
    const store = await primary();
    for (let i = 0; i < 150; i++) await commit(store, i);
    const r = await replica(store.replicationAddress!.port);
    const writes = [];
    for (let i = 150; i < 500; i++) {
      writes.push(commit(store, i));
      if (i % 8 === 0) await Promise.all(writes.splice(0));
    }
    await Promise.all(writes);
    await until(() => r.durable === store.status().flushedLsn, 10_000, 'the replica has the whole log');
    assert.equal(store.status().flushedLsn, store.endLsn);
    const n = assertSameLog(store.dir, 64, r.pieces);
    assert.ok(n > 500, `${n} records`);
    assert.ok(readdirSync(path.join(store.dir, 'wal')).length >= 4, 'the log spans several segments');
    await until(() => repl(store).replicas[0]?.durableLsn === r.durable && r.keepalives > 0, 5000, 'the ack and a keepalive');
    const st = repl(store);
    assert.equal(st.mode, 'async');
    assert.equal(st.syncState, 'async');
    assert.equal(st.epoch, 1);
    // The lag in bytes is flushed − applied: this test replica applies nothing (it acks applied 0).
    assert.deepEqual({ ...st.replicas[0], lastAckAt: 0, address: '' }, { id: 'test-replica', address: '', state: 'streaming', durableLsn: r.durable, appliedLsn: 0, lagBytes: st.flushedLsn, lastAckAt: 0 });
    assert.ok(st.replicas[0]!.lastAckAt! > Date.now() - 10_000);
    // The same, through the owner's control socket (what the agent reads for GET /replication).
    const viaSocket = (await ControlClient.with(store.dir, (c) => c.status())).replication!;
    assert.equal(viaSocket.flushedLsn, store.status().flushedLsn);
    assert.equal(viaSocket.listen, `127.0.0.1:${store.replicationAddress!.port}`);
    assert.deepEqual(viaSocket.replicas.map((x) => [x.id, x.state, x.durableLsn, x.lagBytes]), [['test-replica', 'streaming', r.durable, viaSocket.flushedLsn]]);
  });

  it('splits a live batch larger than 4 MiB into frames of at most about 4 MiB (the replica bounds a frame)', async () => {
    const dir = tmpStoreDir('ra-repl-');
    writeConfig(dir);
    const store = await PageStore.open(dir, { create: true, pageCount: 32, pageSize: 4096, segmentSize: 64 * 1024 * 1024, checkpointWalBytes: 1 << 30, checkpointIntervalMs: 0 });
    stores.push(store);
    const r = await replica(store.replicationAddress!.port);
    await until(() => repl(store).replicas.some((x) => x.state === 'streaming'), 5000, 'the replica streaming');
    // One transaction of ~6 MiB of records: its commit's group flush is one batch.
    const tx = store.begin();
    for (let i = 0; i < 3000; i++) await tx.write(1 + (i % 30), 64, Buffer.alloc(2000, i & 0xff));
    await tx.commit();
    await until(() => r.durable >= store.status().flushedLsn, 10_000, 'the replica to have the batch');
    const big = Math.max(...r.pieces.map((p) => p.bytes.byteLength));
    assert.ok(r.pieces.length >= 2, `the batch went out in ${r.pieces.length} frames`);
    assert.ok(big <= 4 * 1024 * 1024 + 16 * 1024, `largest frame ${big} bytes`);
    assertSameLog(store.dir, 64, r.pieces);
  });

  it('a keepalive (flushed LSN, time) follows live batches, not only every keepaliveMs: the replica\'s lag in time has no 1 s floor', async () => {
    const store = await primary({ keepaliveMs: 3_600_000 });
    const r = await replica(store.replicationAddress!.port);
    await until(() => repl(store).replicas[0]?.state === 'streaming', 5000, 'the replica streaming');
    for (let i = 0; i < 5; i++) await commit(store, i);
    await until(() => r.durable === store.status().flushedLsn, 5000, 'the replica has the commits');
    await until(() => r.keepalives > 0, 2000, 'a keepalive after a live batch (the periodic one is an hour away)');
  });

  it('strangers that open connections and never speak hold at most 16 handshakes; commits and a real replica go on', async () => {
    const store = await primary();
    const port = store.replicationAddress!.port;
    const idle: net.Socket[] = [];
    try {
      for (let i = 0; i < 60; i++) {
        const sock = net.connect(port, '127.0.0.1');
        sock.on('error', () => undefined);
        idle.push(sock);
      }
      await until(() => repl(store).refusedConnections >= 60 - 16, 5000, 'connections past 16 pending handshakes closed unheard');
      assert.ok(repl(store).replicas.filter((x) => x.state === 'handshake').length <= 16, 'at most 16 handshakes pending');
      for (let i = 0; i < 20; i++) await commit(store, i);
      // The idle ones time out (2 s); then a real replica gets in and receives the log.
      await new Promise((r) => setTimeout(r, 2500));
      const r = await replica(port);
      await until(() => r.durable === store.status().flushedLsn, 10_000, 'the replica has the whole log');
    } finally {
      for (const sock of idle) sock.destroy();
    }
  });

  it('checkpoints keep the segments a connected replica has not acknowledged, and retire them once it has', async () => {
    const store = await primary();
    for (let i = 0; i < 150; i++) await commit(store, i);
    const first = () => readdirSync(path.join(store.dir, 'wal')).sort()[0];
    const r = await replica(store.replicationAddress!.port);
    r.holdAcks = true;
    await until(() => r.durable === store.status().flushedLsn, 10_000, 'the replica received the log');
    await store.checkpoint();
    assert.equal(first(), '0000000000000000.wal', 'segment 0 kept: the replica still needs it');
    r.ack();
    await until(() => repl(store).replicas[0]!.durableLsn === r.durable, 5000, 'the ack');
    await commit(store, 150);
    await store.checkpoint();
    assert.notEqual(first(), '0000000000000000.wal', 'retired once the replica had it');
  });

  it('sync: a commit resolves only after the replica acknowledges it durable', async () => {
    const store = await primary({ mode: 'sync', syncReplicas: 1, syncTimeoutMs: 60_000 });
    const r = await replica(store.replicationAddress!.port);
    await until(() => repl(store).replicas[0]?.state === 'streaming', 5000, 'streaming');
    await commit(store, 0); // acked at once
    r.holdAcks = true;
    let resolved = false;
    const c = commit(store, 1).then(() => (resolved = true));
    await until(() => r.durable === store.status().flushedLsn && store.status().commits === 1, 5000, 'the replica has the commit, unacknowledged');
    await new Promise((res) => setTimeout(res, 300));
    assert.equal(resolved, false, 'not acknowledged before the replica acks');
    assert.equal(repl(store).syncState, 'waiting');
    r.ack();
    await c;
    assert.equal(resolved, true);
    assert.equal(repl(store).syncState, 'sync');
  });

  it('sync with no replica: block keeps the commit waiting past syncTimeoutMs until a replica has it; degrade acknowledges it', async () => {
    const blocking = await primary({ mode: 'sync', syncReplicas: 1, syncTimeoutMs: 200 });
    let resolved = false;
    const c = commit(blocking, 0).then(() => (resolved = true));
    await new Promise((res) => setTimeout(res, 700));
    assert.equal(resolved, false, 'block: still waiting');
    assert.equal(repl(blocking).syncState, 'blocked');
    await replica(blocking.replicationAddress!.port);
    await c;
    assert.equal(repl(blocking).syncState, 'sync');

    const degrading = await primary({ mode: 'sync', syncReplicas: 1, syncTimeoutMs: 200, onSyncTimeout: 'degrade' });
    const t0 = Date.now();
    await commit(degrading, 0);
    assert.ok(Date.now() - t0 >= 150, 'waited about syncTimeoutMs first');
    assert.equal(repl(degrading).syncState, 'degraded');
    const t1 = Date.now();
    await commit(degrading, 1);
    assert.ok(Date.now() - t1 < 150, 'degraded: acknowledged after the local flush');
    // A replica back and caught up: sync again.
    await replica(degrading.replicationAddress!.port);
    await until(() => repl(degrading).syncState === 'sync', 5000, 'sync again');
  });

  it('a hello from a replica id that already has a session closes the older one: a sync quorum counts replicas, not connections', async () => {
    // A path that died half-open: the replica saw it close and came back, this end saw nothing.
    const store = await primary({ mode: 'sync', syncReplicas: 2, syncTimeoutMs: 600_000 });
    const port = store.replicationAddress!.port;
    const old = await replica(port, { id: 'r1' });
    await until(() => repl(store).replicas[0]?.state === 'streaming', 5000, 'streaming');
    let resolved = false;
    const c = commit(store, 0).then(() => (resolved = true));
    await until(() => old.durable === store.status().flushedLsn && repl(store).replicas[0]?.durableLsn === old.durable, 5000, 'r1 has the commit durable');
    const again = await replica(port, { id: 'r1' });
    await until(() => again.durable === store.status().flushedLsn, 5000, 'r1 again, caught up');
    const closed = await within(5000, old.ended(), 'the older session of r1 closed');
    assert.match(closed.message, /replaced by a newer connection of replica r1/);
    await new Promise((res) => setTimeout(res, 300));
    assert.equal(resolved, false, 'one replica (two connections of r1) is not two');
    const st = repl(store);
    assert.deepEqual(st.replicas.map((x) => [x.id, x.state]), [['r1', 'streaming'], ['r1', 'gone']]);
    assert.match(st.replicas[1]!.error!, /replaced by a newer connection/);
    assert.equal(st.syncDurableLsn, 0);
    // A second replica: two now.
    await replica(port, { id: 'r2' });
    await c;
    assert.equal(resolved, true);
  });

  it('a session that owes an ack and sends nothing for the bound is closed; an idle one that owes none is not', async () => {
    const store = await primary();
    const r = await replica(store.replicationAddress!.port, { id: 'r1' });
    await commit(store, 0);
    await until(() => repl(store).replicas[0]?.durableLsn === store.status().flushedLsn, 5000, 'acked');
    // Idle past the bound (3 × keepaliveMs 50, at least 5 s): nothing to acknowledge, kept.
    await new Promise((res) => setTimeout(res, 5600));
    assert.deepEqual(repl(store).replicas.map((x) => [x.id, x.state]), [['r1', 'streaming']]);
    // Silent while it owes an ack (it reads, but acknowledges nothing: as a path frozen past a proxy).
    r.holdAcks = true;
    await commit(store, 1);
    const t0 = Date.now();
    const err = await within(15_000, r.ended(), 'the silent session closed');
    assert.match(err.message, /sent nothing for \d+ ms while it owed an acknowledgement/);
    assert.ok(Date.now() - t0 >= 4500, `closed after the bound (${Date.now() - t0} ms)`);
    const st = repl(store);
    assert.deepEqual(st.replicas.map((x) => [x.id, x.state]), [['r1', 'gone']]);
  });

  it('refuses a wrong secret, a bad frame checksum, an older epoch and a diverged replica, each by name, with nothing streamed', async () => {
    const store = await primary();
    for (let i = 0; i < 20; i++) await commit(store, i);
    const port = store.replicationAddress!.port;
    const flushed = store.status().flushedLsn;

    await assert.rejects(TestReplica.connect(port, { secret: 'not the replication secret at all' }), (e: unknown) => isRaError(e, 'RA_ERR_REPL_AUTH') && /authentication failed/.test(e.message));

    const refused = async (r: TestReplica, code: string, pattern: RegExp) => {
      const err = await r.ended();
      assert.ok(isRaError(err, code as never) && pattern.test(err.message), `${code}: ${err?.message}`);
      assert.equal(r.pieces.length, 0, 'nothing streamed');
    };
    await refused(await replica(port, { epoch: 0, id: 'old' }), 'RA_ERR_REPL_EPOCH', /replica old .* is at epoch 0, older than this primary's 1/);
    await refused(await replica(port, { rolling: 12345n, id: 'fork' }), 'RA_ERR_REPL_DIVERGED', /replica fork diverged at 64: its rolling checksum/);
    await refused(await replica(port, { lsn: flushed + 64, id: 'ahead' }), 'RA_ERR_REPL_DIVERGED', new RegExp(`diverged at ${flushed + 64}: its log goes past`));

    // A hello whose frame checksum is wrong, sent past the channel.
    const raw = net.connect(port, '127.0.0.1');
    await new Promise((res) => raw.once('connect', res));
    const ch = await openChannel(raw, { role: 'replica', secret: SECRET });
    const bad = encodeFrame(helloFrame({ epoch: 1, lsn: 64, rolling: 0n, id: 'bad-frame' }));
    bad[bad.byteLength - 3]! ^= 0x40;
    // Sealed with the channel's key (frames travel sealed), so the frame's own checksum is what fails.
    for (const piece of (ch as unknown as { sealer: FrameSealer }).sealer.seal(bad)) raw.write(piece);
    await assert.rejects(ch.next(), (e: unknown) => isRaError(e, 'RA_ERR_REPL_FRAME') && /fails its checksum/.test(e.message));

    await until(() => repl(store).replicas.filter((r) => r.state === 'gone').length === 5, 5000, 'five refused');
    const errors = repl(store).replicas.map((r) => r.error ?? '').join('\n');
    assert.match(errors, /authentication failed/);
    assert.match(errors, /fails its checksum/);
    assert.match(errors, /older than this primary's/);
  });

  it('a bad replication.json fails the open by name, and leaves the store openable once fixed', async () => {
    const dir = tmpStoreDir('ra-repl-cfg-');
    const opts = { create: true, pageCount: 16, pageSize: 4096, controlSocket: false } as const;
    const cases: Array<[string, RegExp]> = [
      ['{not json', /replication\.json: not JSON/],
      [JSON.stringify({ role: 'leader', listen: '127.0.0.1:0', secret: SECRET }), /"role" must be "primary" or "replica"/],
      [JSON.stringify({ role: 'primary', listen: 'localhost', secret: SECRET }), /"listen" must be "host:port"/],
      [JSON.stringify({ role: 'primary', listen: '127.0.0.1:0', secret: 'short' }), /"secret" must be a string of at least 16 bytes/],
      [JSON.stringify({ role: 'primary', listen: '127.0.0.1:0', secret: SECRET, mode: 'semi' }), /"mode" must be "async" or "sync"/],
      [JSON.stringify({ role: 'primary', listen: '127.0.0.1:0', secret: SECRET, onSyncTimeout: 'panic' }), /"onSyncTimeout" must be "block" or "degrade"/],
      [JSON.stringify({ role: 'primary', listen: '127.0.0.1:0', secret: SECRET, syncReplicas: 0 }), /"syncReplicas" must be an integer from 1/],
      [JSON.stringify({ role: 'primary', listen: '127.0.0.1:0', secret: SECRET, secrte: 'x' }), /unknown field "secrte"/],
    ];
    mkdirSync(dir, { recursive: true });
    for (const [text, pattern] of cases) {
      writeFileSync(path.join(dir, 'replication.json'), text);
      await assert.rejects(PageStore.open(dir, opts), (e: unknown) => isRaError(e, 'RA_ERR_REPL_CONFIG') && pattern.test(e.message), text);
    }
    // A port already taken: the open fails and releases the store.
    const taken = net.createServer();
    await new Promise<void>((res) => taken.listen(0, '127.0.0.1', res));
    writeConfig(dir, { listen: `127.0.0.1:${(taken.address() as net.AddressInfo).port}` });
    await assert.rejects(PageStore.open(dir, opts), (e: unknown) => isRaError(e, 'RA_ERR_REPL_CONFIG') && /cannot listen for replicas on 127\.0\.0\.1:\d+/.test(e.message));
    taken.close();
    writeConfig(dir);
    const store = await PageStore.open(dir, opts);
    assert.ok(store.replicationAddress!.port > 0);
    await store.close();
  });

  it('sync, kill -9 of the writer mid-stream: every commit it acknowledged is in the replica\'s file', async () => {
    const dir = tmpStoreDir('ra-repl-kill-');
    writeConfig(dir, { mode: 'sync', syncReplicas: 1, syncTimeoutMs: 60_000 });
    const child = spawn(process.execPath, [fixture('replicationWriter.js'), dir], { stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => (out += d));
    try {
      await until(() => /port \d+\n/.test(out), 20_000, 'the writer listens');
      const port = Number(/port (\d+)/.exec(out)![1]);
      const r = await TestReplica.connect(port);
      child.stdin.write('go\n');
      await until(() => (out.match(/ack /g) ?? []).length >= 300, 30_000, '300 acknowledged commits');
      child.kill('SIGKILL');
      await new Promise((res) => child.once('exit', res));
      await r.ended();
      const acked = [...out.matchAll(/ack (\d+)\n/g)].map((m) => Number(m[1]));
      // The replica's file: pieces of records; collect the commit records' transaction ids.
      const file = readFileSync(r.file);
      const committed = new Set<number>();
      for (let p = 0; p < file.byteLength; ) {
        const len = file.readUInt32LE(p + 8);
        const bytes = file.subarray(p + 12, p + 12 + len);
        for (let q = 0; q < bytes.byteLength; q += bytes.readUInt32LE(q)) {
          if (bytes[q + 4] === 2) committed.add(Number(bytes.readBigUInt64LE(q + 16)));
        }
        p += 12 + len;
      }
      const missing = acked.filter((id) => !committed.has(id));
      assert.deepEqual(missing, [], `${acked.length} acknowledged commits, all on the replica`);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
