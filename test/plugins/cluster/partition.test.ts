/**
 * A partition {old primary L, replica B} | {etcd, replica A}, against a real etcd (found by the
 * adversarial review of #15). L goes on acknowledging until its own deadline, each commit held by
 * L and by its sync replica B; B, cut off from etcd, cannot publish its new durable LSN, but its
 * member key lives on under its lease for up to a TTL. An election that counted that key as an
 * answer took B's old LSN for what B holds, and A won without the commits L acknowledged meanwhile.
 * Now a peer answers for an election only with a key put after the leader key went vacant: A
 * waits (no primary, sync strictness) until B is heard again, and then the member holding the
 * most wins.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { catchUp } from '../../../core/cluster/eligibility.js';
import { ClusterMember } from '../../../plugins/cluster/member.js';
import { startEtcd, type EtcdServer } from '../../helpers/etcd.js';
import { until } from '../../helpers/wait.js';
import { startProxy, type FaultProxy } from './faultProxy.js';
import { standIn, type StandIn } from './standIn.js';

const TTL = 3000;
const log = pino({ level: 'silent' });

function member(url: string, name: string, src: StandIn, syncRule: boolean, onRenewed?: () => void): ClusterMember {
  // The sync rule as plugins/replication/clusterSource.ts applies it: 3 members, syncReplicas 1.
  if (syncRule) src.decide = (peers, limits) => catchUp(src.state(), peers, { mode: 'sync', replicas: limits.members - 1, syncReplicas: 1, maxLagBytes: 0 });
  return new ClusterMember({
    cluster: 'split', member: name, etcd: [url], ttlMs: TTL, marginMs: 750, pollMs: 200, httpAddress: null, source: src, limits: { members: 3, maxLagBytes: 0 }, log,
    ...(onRenewed ? { onRenewed } : {}),
  });
}

describe('cluster election under a partition', () => {
  let etcd: EtcdServer | undefined;
  const proxies: FaultProxy[] = [];
  const members: ClusterMember[] = [];
  after(async () => {
    await Promise.all(members.map((m) => m.stop().catch(() => undefined)));
    for (const p of proxies) await p.close();
    await etcd?.close();
  });

  it('a replica cut off from etcd with the old primary is not counted on its old member key: no commit acknowledged meanwhile is lost', async () => {
    etcd = await startEtcd();
    const u = new URL(etcd.url);
    const pL = await startProxy({ host: u.hostname, port: Number(u.port) });
    const pB = await startProxy({ host: u.hostname, port: Number(u.port) });
    proxies.push(pL, pB);
    const sL = standIn({ durableLsn: 100 });
    const sA = standIn({ durableLsn: 100 });
    const sB = standIn({ durableLsn: 100 });
    const L = member(`http://${pL.address}`, 'l', sL, false);
    members.push(L);
    L.start();
    await until(() => L.isLeader(), 5000, 'l to lead');
    let bRenewed = 0;
    const A = member(etcd.url, 'a', sA, true);
    const B = member(`http://${pB.address}`, 'b', sB, true, () => bRenewed++);
    members.push(A, B);
    A.start();
    B.start();
    await sleep(1500); // every member key put
    // Cut right after B renewed: B's key then outlives L's (the losing case, about half the time before).
    const seen = bRenewed;
    await until(() => bRenewed !== seen, 5000, 'a renewal of b');
    pL.cut();
    pB.cut();
    // L, still within its deadline, acknowledges up to LSN 200: durable on L and on its sync replica B.
    assert.ok(L.isLeader());
    sL.s.durableLsn = 200;
    sB.s.durableLsn = 200;
    // Two TTLs: L's key and B's key both expire; A alone must not lead (it cannot know what B holds).
    const end = Date.now() + 2 * TTL;
    while (Date.now() < end) {
      assert.equal(A.isLeader(), false, `A led holding LSN ${sA.s.durableLsn} while commits up to 200 were acknowledged (on B only): ${A.eligibility().reason}`);
      await sleep(20);
    }
    assert.match(A.eligibility().reason, /sync: 1 of 2 replicas answer/);
    // B comes back: it is heard with what it holds now, and it (not A) is the one that may win.
    pB.heal();
    await until(() => B.isLeader(), 4 * TTL, 'b to lead once heard again');
    assert.equal(A.isLeader(), false);
  });
});
