// The replication stream against a man in the middle (#14 item 1: "no unauthenticated peer may read
// or feed WAL"). A primary store's owner (PageStore with replication.json, mode sync: its real
// sender on loopback) streams to a replica run by the agent's ReplicaSession, through a TCP proxy
// written here that sees every byte. The proxy passes the handshake through, then cuts each
// direction into the stream's units (sealed frames; for a version 1 peer, plain frames) and may
// alter, drop, replay or inject one. Checked: a marker written to a page never crosses the wire in
// the clear; a flipped byte, a replayed or a dropped frame is refused (RA_ERR_REPL_FRAME, "frame
// failed authentication") and nothing past the last good frame becomes durable; a forged `ack`
// claiming everything durable does not release a sync commit.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import pino from 'pino';
import { after, before, describe, it } from 'node:test';
import { xxh3 } from 'recovery-agent/native';
import { ackFrame, encodeFrame } from '../../../core/replication/protocol.js';
import { PageStore } from '../../../plugins/pagestore/pageStore.js';
import type { ReplicationStatus } from '../../../plugins/pagestore/replicationSender.js';
import { walDirOf } from '../../../plugins/pagestore/storeFiles.js';
import { ReplicaSession } from '../../../plugins/replication/replicaSession.js';
import { pagestore } from '../../helpers/engine.js';
import { copyStoreDir, tmpStoreDir } from '../../helpers/store.js';
import { until } from './agentHarness.js';

const PAGES = 32;
const PAGE = 4096;
const SECRET = 'sealed-stream-test-secret-0123456789';
/** Each side's handshake bytes: a 40-byte greeting, a 32-byte proof and a verdict byte. */
const kHandshakeBytes = 40 + 32 + 1;

type Direction = 'toPrimary' | 'toReplica';
/** What to forward in place of a unit (none: drop it). */
type Policy = (dir: Direction, unit: Buffer) => Buffer[];

/** A man in the middle between replicas and the primary at `target`. */
class Proxy {
  port = 0;
  /** Every byte seen, both directions. */
  readonly captured: Buffer[] = [];
  /** New connections are cut at once while false (a replica's reconnect must not bring the data in behind the test's back). */
  accepting = true;
  policy: Policy | null = null;
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private toPrimary: net.Socket | null = null;

  constructor(private readonly target: number) {
    this.server = net.createServer((client) => this.onClient(client));
  }

  async listen(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  /** Writes `bytes` to the primary on the current connection, as if the replica had sent them. */
  injectToPrimary(bytes: Buffer): void {
    this.toPrimary!.write(bytes);
  }

  close(): void {
    this.server.close();
    for (const s of this.sockets) s.destroy();
  }

  private onClient(client: net.Socket): void {
    if (!this.accepting) {
      client.destroy();
      return;
    }
    const upstream = net.connect(this.target, '127.0.0.1');
    this.toPrimary = upstream;
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    this.pipe('toPrimary', client, upstream);
    this.pipe('toReplica', upstream, client);
  }

  /** Forwards `from` to `to`: the handshake as is, then unit by unit through the policy. */
  private pipe(dir: Direction, from: net.Socket, to: net.Socket): void {
    let buf = Buffer.alloc(0);
    let handshake = kHandshakeBytes;
    let version = 0;
    from.on('data', (chunk: Buffer) => {
      this.captured.push(chunk);
      buf = Buffer.concat([buf, chunk]);
      if (handshake > 0) {
        if (version === 0 && buf.byteLength >= 6) version = buf.readUInt16LE(4);
        const n = Math.min(handshake, buf.byteLength);
        to.write(buf.subarray(0, n));
        buf = buf.subarray(n);
        handshake -= n;
      }
      for (;;) {
        // Version 2: a u32 length, then that many bytes. Version 1: a plain 40-byte header whose
        // payload length is at 32, the payload, an 8-byte checksum.
        const size = version >= 2 ? (buf.byteLength >= 4 ? 4 + buf.readUInt32LE(0) : 0) : buf.byteLength >= 40 ? 48 + buf.readUInt32LE(32) : 0;
        if (size === 0 || buf.byteLength < size) break;
        const unit = Buffer.from(buf.subarray(0, size));
        buf = buf.subarray(size);
        for (const out of this.policy ? this.policy(dir, unit) : [unit]) to.write(version >= 2 ? out : fixChecksum(out));
      }
    });
  }
}

/** A plain (version 1) frame altered on the way gets a matching checksum: what a real attacker would do. */
function fixChecksum(frame: Buffer): Buffer {
  const body = frame.byteLength - 8;
  if (body >= 40) frame.writeBigUInt64LE(xxh3(frame.subarray(0, body)), body);
  return frame;
}

describe('replication stream through a man in the middle', () => {
  const root = path.dirname(tmpStoreDir('ra-replsealed-'));
  const primaryDir = path.join(root, 'primary');
  const replicaDir = path.join(root, 'replica');
  const log = pino({ level: 'silent' });
  let store: PageStore;
  let primaryPort: number;
  const proxies: Proxy[] = [];
  const sessions: ReplicaSession[] = [];
  const pending: Array<Promise<unknown>> = [];

  const repl = (): ReplicationStatus => store.status().replication!;
  /** A commit writing `text` at the start of page `page` (not awaited: in sync mode it waits for the replica). */
  const commit = (page: number, text: string): Promise<void> => {
    const tx = store.begin();
    const p = (async () => {
      await tx.write(page, 0, Buffer.from(text));
      await tx.commit();
    })();
    p.catch(() => undefined);
    pending.push(p);
    return p;
  };
  /** A fresh proxy and a replica session through it, streaming and caught up. */
  const connect = async (): Promise<{ proxy: Proxy; session: ReplicaSession }> => {
    await Promise.all(sessions.splice(0).map((s) => s.stop()));
    const proxy = new Proxy(primaryPort);
    await proxy.listen();
    proxies.push(proxy);
    const session = new ReplicaSession({ storeId: 'r', dir: replicaDir, engine: pagestore, host: '127.0.0.1', port: proxy.port, secret: SECRET, id: 'r1', log, onRefused: () => undefined });
    sessions.push(session);
    await session.start();
    await until('the replica streaming and caught up', () => (session.status().state === 'streaming' && session.status().durableLsn === repl().flushedLsn ? true : undefined));
    return { proxy, session };
  };
  /** The session lost its connection because a frame failed authentication. */
  const refusedForAuth = (session: ReplicaSession) =>
    until('the replica refusing the frame', () => {
      const st = session.status();
      // lastEnded: the tries to connect again (every 25 ms, to a proxy no longer accepting) replace `reason`.
      return st.state !== 'streaming' && /frame failed authentication/.test(st.lastEnded?.reason ?? '') ? st : undefined;
    }, 10_000);

  before(async () => {
    await (await PageStore.open(primaryDir, { create: true, pageCount: PAGES, pageSize: PAGE, segmentSize: 256 * 1024, controlSocket: false })).close();
    copyStoreDir(primaryDir, replicaDir);
    writeFileSync(
      path.join(primaryDir, 'replication.json'),
      JSON.stringify({ role: 'primary', listen: '127.0.0.1:0', secret: SECRET, epoch: 1, keepaliveMs: 50, mode: 'sync', syncTimeoutMs: 300, onSyncTimeout: 'block' }),
      { mode: 0o600 },
    );
    store = await PageStore.open(primaryDir, { checkpointIntervalMs: 0 });
    primaryPort = store.replicationAddress!.port;
  });
  after(async () => {
    for (const p of proxies) p.accepting = true;
    await Promise.race([Promise.allSettled(pending), new Promise((r) => setTimeout(r, 5000))]);
    await Promise.all(sessions.map((s) => s.stop()));
    for (const p of proxies) p.close();
    await store?.close();
  });

  it('a passive listener never sees a page\'s contents: the marker reaches the replica\'s log, not the wire in the clear', async () => {
    const { proxy, session } = await connect();
    const marker = 'MARKER-in-the-clear-7f3a9c-if-you-can-read-this';
    await commit(3, marker);
    await until('the replica durable past the commit', () => (session.status().durableLsn >= repl().flushedLsn ? true : undefined));
    const replicaLog = Buffer.concat(readdirSync(walDirOf(replicaDir)).map((n) => readFileSync(path.join(walDirOf(replicaDir), n))));
    assert.ok(replicaLog.includes(marker), 'the marker crossed (the replica has it in its log)');
    const wire = Buffer.concat(proxy.captured);
    assert.ok(wire.byteLength > 0);
    assert.equal(wire.indexOf(marker), -1, 'the marker is not on the wire in the clear');
    assert.equal(wire.indexOf(marker.slice(0, 12)), -1);
  });

  it('a byte flipped in a frame on its way: the replica closes with RA_ERR_REPL_FRAME, durable not past the last good frame', async () => {
    const { proxy, session } = await connect();
    const before = session.status().durableLsn;
    let flipped = 0;
    proxy.policy = (dir, unit) => {
      // The next large unit to the replica: the WAL frame of the commit below (keepalives are small).
      if (dir === 'toReplica' && unit.byteLength > 500 && flipped++ === 0) {
        unit[unit.byteLength >> 1]! ^= 0x20;
        proxy.accepting = false;
      }
      return [unit];
    };
    const c = commit(5, 'x'.repeat(1000));
    const st = await refusedForAuth(session);
    assert.equal(flipped >= 1, true);
    assert.equal(st.durableLsn, before, 'nothing of the altered frame became durable');
    await until('the primary told why', () => (repl().replicas.some((r) => /failed authentication/.test(r.error ?? '')) ? true : undefined), 10_000);
    // The connection is trusted again once nobody alters it: the replica catches up, the commit completes.
    proxy.policy = null;
    proxy.accepting = true;
    await c;
    await until('the replica caught up', () => (session.status().durableLsn === repl().flushedLsn ? true : undefined));
  });

  it('a forged ack claiming everything durable does not release a sync commit', async () => {
    const { proxy } = await connect();
    // From now on nothing of the replica reaches the primary, and nobody new gets in.
    proxy.accepting = false;
    proxy.policy = (dir, unit) => (dir === 'toPrimary' ? [] : [unit]);
    let acked = false;
    const c = commit(7, 'forged-ack-commit').then(() => (acked = true));
    const target = repl().flushedLsn;
    await until('the commit flushed locally', () => (repl().flushedLsn > target ? true : undefined));
    const flushed = repl().flushedLsn;
    proxy.injectToPrimary(encodeFrame(ackFrame(1, { durableLsn: flushed, appliedLsn: flushed })));
    await new Promise((r) => setTimeout(r, 800));
    assert.equal(acked, false, 'the commit was not acknowledged on a forged ack');
    assert.ok(['waiting', 'blocked'].includes(repl().syncState), repl().syncState);
    assert.ok((repl().syncDurableLsn ?? 0) < flushed, `sync durable ${repl().syncDurableLsn} < ${flushed}`);
    // The real replica, once let through, acknowledges it.
    proxy.policy = null;
    proxy.accepting = true;
    await c;
    assert.equal(acked, true);
  });

  for (const attack of ['replayed', 'dropped'] as const) {
    it(`a ${attack} frame is refused: RA_ERR_REPL_FRAME, nothing of what follows it applied`, async () => {
      const { proxy, session } = await connect();
      const before = session.status().durableLsn;
      let done = false;
      proxy.policy = (dir, unit) => {
        if (dir !== 'toReplica' || done) return [unit];
        if (attack === 'replayed' && unit.byteLength > 500) {
          done = true;
          proxy.accepting = false;
          return [unit, unit];
        }
        if (attack === 'dropped') {
          // Any frame (a keepalive, most likely): the next one, the commit's WAL, must not open.
          done = true;
          proxy.accepting = false;
          return [];
        }
        return [unit];
      };
      const c = commit(9, `${attack}-${'y'.repeat(1000)}`);
      const st = await refusedForAuth(session);
      if (attack === 'dropped') assert.equal(st.durableLsn, before, 'nothing after the dropped frame became durable');
      else assert.ok(st.durableLsn <= repl().flushedLsn);
      proxy.policy = null;
      proxy.accepting = true;
      await c;
    });
  }
});
