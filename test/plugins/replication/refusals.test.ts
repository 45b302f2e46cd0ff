// End to end, the replica agent (a separate process) refusing what it must not apply (#14
// "Tests"; the wrong secret is replicaAgent.test.ts's): a frame from an older epoch than the
// replica's — a stale primary still streaming after another took over — and a replica whose log
// diverged from its primary's, refused by the owner's real sender. Each is a `refused` state
// with the reason, one `replication-refused` failure with the code, nothing received and
// nothing applied (the data file byte-equal to before).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { keepaliveFrame, openChannel, parseHello, walFrame } from '../../../core/replication/protocol.js';
import { PageStore } from '../../../plugins/pagestore/pageStore.js';
import { primaryRuns, writePrimary, type Primary } from '../../helpers/replica.js';
import { copyStoreDir } from '../../helpers/store.js';
import { exited, replicationOf, startAgent, until, type Agent, killAgents } from './agentHarness.js';

const SECRET = 'refusals-test-secret-of-32-bytes';

interface StoreStatus {
  state: string;
  reason?: string;
  epoch: number;
  durableLsn: number;
  appliedLsn: number;
  bytesReceived: number;
}

function startReplica(root: string, name: string, store: string, port: number): Agent {
  writeFileSync(path.join(root, `${name}.secret`), SECRET + '\n', { mode: 0o600 });
  return startAgent(root, name, `stores:
  - id: r
    path: ${store}
    replication: { role: replica, primary: 127.0.0.1:${port}, secretFile: ./${name}.secret, id: ${name} }
`);
}

async function refusal(base: string): Promise<{ status: StoreStatus; failure: { code: string; reason: string } }> {
  const status = await until('the refusal', async () => {
    const s = await replicationOf<StoreStatus>(base, 'r');
    return s.state === 'refused' ? s : undefined;
  });
  const { failures } = (await (await fetch(`${base}/failures`)).json()) as { failures: Array<{ kind: string; evidence: { code: string; reason: string } }> };
  const refused = failures.filter((f) => f.kind === 'replication-refused');
  assert.equal(refused.length, 1, 'one failure, not one per attempt');
  return { status, failure: refused[0]!.evidence };
}

describe('replica agent refusals, end to end', () => {
  let root: string;
  let primary: Primary;
  const agents: Agent[] = [];

  before(async () => {
    root = mkdtempSync(path.join(os.tmpdir(), 'ra-replref-'));
    primary = await writePrimary(root, 300, 100);
  });
  after(() => {
    killAgents(agents);
  });

  it('refuses frames from an epoch older than its own, and applies nothing of them', async () => {
    // A primary that streams at `epoch` whatever the replica says: epoch 2 first, half its log
    // up to `mid` (the replica takes the epoch), then epoch 1 (the stale one) from where the
    // replica is. It records the error frames it is sent back.
    let epoch = 2;
    let mid = 0;
    const told: string[] = [];
    const server = net.createServer((sock) => {
      void (async () => {
        const ch = await openChannel(sock, { role: 'primary', secret: SECRET, epoch });
        const hello = parseHello(await ch.next());
        const runs = primaryRuns(primary, hello.lsn, 8, 5);
        if (epoch === 2) mid = runs[Math.floor(runs.length / 2)]!.endLsn;
        const upto = epoch === 2 ? mid : Infinity;
        let flushed = hello.lsn;
        for (const r of runs) {
          if (r.endLsn > upto) continue;
          ch.send(walFrame(epoch, r.startLsn, r.bytes));
          flushed = r.endLsn;
          await ch.drained();
        }
        ch.send(keepaliveFrame(epoch, { flushedLsn: flushed, timeMs: Date.now() }));
        for (;;) await ch.next();
      })().catch((err: unknown) => told.push(String(err)));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    try {
      const dir = path.join(root, 'epoch-replica');
      copyStoreDir(primary.base, dir);
      const a = startReplica(root, 'e1', dir, port);
      agents.push(a);
      const first = await until('epoch 2 applied to the middle', async () => {
        const s = await replicationOf<StoreStatus>(await a.base, 'r');
        return mid > 0 && s.appliedLsn === mid && s.state === 'streaming' ? s : undefined;
      });
      assert.equal(first.epoch, 2);
      a.child.kill('SIGTERM');
      assert.equal(await exited(a.child), 0);
      const pages = readFileSync(path.join(dir, 'pages.db'));

      epoch = 1;
      const b = startReplica(root, 'e1', dir, port);
      agents.push(b);
      const { status, failure } = await refusal(await b.base);
      assert.match(status.reason ?? '', /epoch 1, older than this replica's 2/);
      assert.equal(failure.code, 'RA_ERR_REPL_EPOCH');
      assert.equal(status.epoch, 2);
      assert.equal(status.durableLsn, mid, 'nothing of the stale frames was written');
      assert.equal(status.appliedLsn, mid);
      assert.equal(status.bytesReceived, 0, 'nothing of them counted as received');
      assert.ok(told.some((t) => /older than this replica's/.test(t)), `the stale primary was told why (${told.join('; ')})`);
      b.child.kill('SIGTERM');
      assert.equal(await exited(b.child), 0);
      assert.ok(readFileSync(path.join(dir, 'pages.db')).equals(pages), 'no page changed');
    } finally {
      server.close();
    }
  });

  it('is refused by its primary when its log diverged, and applies nothing', async () => {
    // The primary: the base, made a replication primary (the owner's sender), with commits of its own.
    const pdir = path.join(root, 'div-primary');
    const rdir = path.join(root, 'div-replica');
    copyStoreDir(primary.base, pdir);
    copyStoreDir(primary.base, rdir);
    writeFileSync(path.join(pdir, 'replication.json'), JSON.stringify({ role: 'primary', listen: '127.0.0.1:0', secret: SECRET }), { mode: 0o600 });
    const owner = await PageStore.open(pdir, { controlSocket: false, checkpointIntervalMs: 0 });
    try {
      const commit = async (store: PageStore, fill: number, n: number) => {
        for (let i = 0; i < n; i++) {
          const tx = store.begin();
          await tx.write(1 + (i % 8), 0, Buffer.alloc(100, fill));
          await tx.commit();
        }
      };
      await commit(owner, 0xaa, 40);
      // The replica's copy took other commits (it was written to as a store of its own).
      const other = await PageStore.open(rdir, { controlSocket: false, checkpointIntervalMs: 0 });
      await commit(other, 0x55, 3);
      await other.close();
      const pages = readFileSync(path.join(rdir, 'pages.db'));

      const a = startReplica(root, 'd1', rdir, owner.replicationAddress!.port);
      agents.push(a);
      const { status, failure } = await refusal(await a.base);
      assert.match(status.reason ?? '', /diverged at \d+/);
      assert.equal(failure.code, 'RA_ERR_REPL_DIVERGED');
      assert.equal(status.bytesReceived, 0);
      assert.equal(status.appliedLsn, status.durableLsn);
      const seen = owner.status().replication!.replicas.find((x) => x.id === 'd1');
      assert.match(seen?.error ?? '', /diverged/, 'the primary says so too');
      a.child.kill('SIGTERM');
      assert.equal(await exited(a.child), 0);
      assert.ok(readFileSync(path.join(rdir, 'pages.db')).equals(pages), 'no page changed');
    } finally {
      await owner.close();
    }
  });
});
