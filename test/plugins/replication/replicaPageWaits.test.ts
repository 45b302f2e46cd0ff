// The replica's page-request waiters (#14 item 5, the leak): a request for a page at an LSN the
// replica's log has not reached waits for appends; one that times out, or whose connection ends,
// must leave nothing behind. A stand-in primary (the real handshake and frames) asks the replica
// run by ReplicaSession, and sends no log at all: nothing appends, so nothing else would sweep
// the waiters away.
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import pino from 'pino';
import { after, before, describe, it } from 'node:test';
import { FrameType, openChannel, pageRequestFrame, parseHello, parsePage, type ReplicationChannel } from '../../../core/replication/protocol.js';
import { PageStore } from '../../../plugins/pagestore/pageStore.js';
import { ReplicaSession } from '../../../plugins/replication/replicaSession.js';
import { pagestore } from '../../helpers/engine.js';
import { tmpStoreDir } from '../../helpers/store.js';
import { until } from './agentHarness.js';

const SECRET = 'replica-page-waits-secret-0123456789';

describe('replica page-request waiters', () => {
  const dir = path.join(path.dirname(tmpStoreDir('ra-replwait-')), 'replica');
  const log = pino({ level: 'silent' });
  let server: net.Server;
  const channels: ReplicationChannel[] = [];
  let connected: (ch: ReplicationChannel) => void = () => undefined;
  let session: ReplicaSession | undefined;

  before(async () => {
    await (await PageStore.open(dir, { create: true, pageCount: 8, pageSize: 4096, segmentSize: 256 * 1024, controlSocket: false })).close();
    server = net.createServer((sock) => {
      void (async () => {
        const ch = await openChannel(sock, { role: 'primary', secret: SECRET, epoch: 1 });
        const f = await ch.next();
        assert.equal(f.type, FrameType.hello);
        parseHello(f);
        channels.push(ch);
        connected(ch);
      })().catch(() => undefined);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  });
  after(async () => {
    await session?.stop();
    for (const ch of channels) ch.close();
    await new Promise<void>((r) => server.close(() => r()));
  });

  const start = async (pageWaitMs: number): Promise<ReplicationChannel> => {
    const got = new Promise<ReplicationChannel>((r) => (connected = r));
    const { port } = server.address() as net.AddressInfo;
    session = new ReplicaSession({ storeId: 'r', dir, engine: pagestore, host: '127.0.0.1', port, secret: SECRET, id: 'r1', log, onRefused: () => undefined, pageWaitMs });
    await session.start();
    return got;
  };

  it('keeps no waiter of a request that timed out', async () => {
    const ch = await start(40);
    const far = session!.status().durableLsn + 10 ** 9;
    const N = 20;
    for (let i = 0; i < N; i++) ch.send(pageRequestFrame(1, 1 + (i % 7), far));
    for (let i = 0; i < N; i++) {
      const a = parsePage(await ch.next());
      assert.equal(a.pageId, 1 + (i % 7), 'answers in the order asked');
      assert.match(a.refused ?? '', /.+/, 'refused: the log never got there');
    }
    assert.equal(session!.pendingPageWaits, 0, 'no waiter left after timed-out requests');
    await session!.stop();
    session = undefined;
  });

  it('wakes and drops the waiter of a request whose connection ended, before its timeout', async () => {
    const ch = await start(60_000);
    const far = session!.status().durableLsn + 10 ** 9;
    ch.send(pageRequestFrame(1, 3, far));
    await until('the request waiting', () => (session!.pendingPageWaits === 1 ? true : undefined), 10_000);
    ch.close();
    await until('the waiter gone', () => (session!.pendingPageWaits === 0 ? true : undefined), 5_000);
    const t0 = Date.now();
    await session!.stop();
    assert.ok(Date.now() - t0 < 10_000, 'stop did not wait for the page request to time out');
    session = undefined;
  });
});
