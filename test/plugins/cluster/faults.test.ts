/**
 * Failover under the fault kinds #15 item 5 names beyond host death (failover.test.ts has that):
 * one cluster — a 3-member etcd, three agents in sync mode, every link through a fault proxy
 * (clusterHarness.ts) — taken through the faults one after another, each starting from a
 * healthy cluster with one primary writing:
 *
 * 1. SIGSTOP of the primary's agent and writer for 2× TTL: another member is elected meanwhile;
 *    after SIGCONT the old writer acknowledges nothing more in its epoch (the commit fence: its
 *    deadline lapsed while it was frozen), and the old primary rejoins as a replica.
 * 2. The primary cut off from etcd: another member is elected; the cut-off one stops
 *    acknowledging by its own clock before that; healed, it rejoins as a replica.
 * 3. The primary cut off from its replicas: the documented sync behaviour — it keeps the leader
 *    key (it still reaches etcd), so no failover; its commits block (none acknowledged without a
 *    replica holding it) until the link heals, then go on in the same epoch.
 * 4. The etcd leader killed: etcd elects another raft leader and the leases survive it; there is
 *    one primary after, acknowledging (the same member if its keepalives bridged the gap, else a
 *    new one at a larger epoch — either is correct; the test says which happened).
 *
 * After each step and at the end, the checker (failoverChecker.ts): no commit acknowledged
 * before a store opened is missing there, and no two nodes acknowledged in overlapping epochs.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Cluster, TTL_MS, now, waitFor, type Node } from './clusterHarness.js';

function assertClean(c: Cluster, step: string): void {
  const r = c.check();
  assert.deepEqual(r.lost, [], `${step}: acknowledged commits lost`);
  assert.deepEqual(r.overlaps, [], `${step}: overlapping epochs`);
}

/**
 * Waits until every `network-partition` and `replication-refused` failure `node` reported is
 * cleared: the member reaches etcd again (its lease renewed) and its replica streams again.
 */
async function settledByThemselves(node: Node, step: string): Promise<void> {
  let last = '';
  await waitFor(`${step}: ${node.name}'s partition and refusal failures cleared by their detectors`, 20_000, async () => {
    const r = await node.get('/failures?limit=500');
    if (r?.status !== 200) return undefined;
    const mine = (r.body as { failures: Array<{ kind: string; state: string }> }).failures.filter((f) => f.kind === 'network-partition' || f.kind === 'replication-refused');
    last = JSON.stringify(mine.map((f) => `${f.kind}:${f.state}`));
    return mine.length > 0 && mine.every((f) => f.state === 'cleared') ? true : undefined;
  }, async () => `failures: ${last}`);
  // Over by themselves, they were never handed to a person: the member's own answer (stepping
  // down, rebuilding as a replica) was under way, so they settled rather than escalated.
  const r = await node.get('/recoveries?limit=500');
  assert.equal(r?.status, 200);
  const escalated = (r!.body as { recoveries: Array<{ kind: string; escalated: boolean; reason?: string }> }).recoveries.filter((x) => x.escalated);
  assert.deepEqual(escalated.map((x) => `${x.kind}: ${x.reason ?? ''}`), [], `${step}: ${node.name} escalated`);
}

/** Acks `node` stamped in `epoch` at or after `since`. */
function acksSince(c: Cluster, node: Node, epoch: number, since: bigint): number {
  return c.runs().filter((r) => r.node === node.name).flatMap((r) => r.acks).filter((a) => a.epoch === epoch && a.ns >= since).length;
}

describe('cluster failover under faults: SIGSTOP, cut from etcd, cut from replicas, etcd leader killed', () => {
  let c: Cluster | undefined;
  after(async () => {
    await c?.close();
  });

  it('elects a new primary (or blocks, cut from its replicas), loses no acknowledged commit, never overlaps epochs', async (t) => {
    c = await Cluster.start({ etcdMembers: 3 });
    let { node: p, epoch } = await c.newPrimary('the first primary', 40_000);
    await c.acksAfter(p, epoch, 0n, 30, 30_000);
    for (const n of c.nodes) if (n !== p) await c.replicaAgain(n, 20_000);

    // 1. SIGSTOP for 2× TTL.
    {
      const frozenAt = now();
      const writer = p.freeze();
      assert.ok(writer, `${p.name}'s writer runs`);
      const next = await c.newPrimary('a new primary while the old one is frozen', 2 * TTL_MS + 8000, { among: c.nodes.filter((n) => n !== p), after: epoch });
      const elapsed = Number(now() - frozenAt) / 1e6;
      if (elapsed < 2 * TTL_MS) await sleep(2 * TTL_MS - elapsed);
      const thawedAt = now();
      p.thaw(writer);
      const firstNew = await c.acksAfter(next.node, next.epoch, frozenAt, 20, 20_000);
      await c.replicaAgain(p, 30_000);
      assert.equal(acksSince(c, p, epoch, thawedAt), 0, `${p.name} acknowledged in epoch ${epoch} after SIGCONT`);
      assertClean(c, 'SIGSTOP');
      t.diagnostic(`SIGSTOP: ${p.name} (epoch ${epoch}) → ${next.node.name} (epoch ${next.epoch}); fault to first new ack ${Number(firstNew - frozenAt) / 1e6} ms`);
      ({ node: p, epoch } = next);
    }

    // 2. The primary cut off from etcd.
    {
      const cutAt = now();
      for (const x of p.etcdProxies) x.cut();
      const next = await c.newPrimary('a new primary while the old one is cut off from etcd', 20_000, { among: c.nodes.filter((n) => n !== p), after: epoch });
      const firstNew = await c.acksAfter(next.node, next.epoch, cutAt, 20, 20_000);
      assert.notEqual((await p.get('/primary'))?.status, 200, `${p.name} cut off from etcd still answers /primary 200`);
      for (const x of p.etcdProxies) x.heal();
      await c.replicaAgain(p, 30_000);
      // What the cut member reported is over by itself once it reaches etcd again and streams:
      // cleared by its detectors, not left escalated with no rule to heal it.
      await settledByThemselves(p, 'cut from etcd');
      assertClean(c, 'cut from etcd');
      t.diagnostic(`cut from etcd: ${p.name} (epoch ${epoch}) → ${next.node.name} (epoch ${next.epoch}); fault to first new ack ${Number(firstNew - cutAt) / 1e6} ms`);
      ({ node: p, epoch } = next);
    }

    // 3. The primary cut off from its replicas: no failover; commits block; healed, they go on.
    {
      p.replProxy.cut();
      await sleep(500); // commits whose replica acknowledgement was already on its way
      const blockedFrom = now();
      await sleep(2 * TTL_MS);
      assert.equal(acksSince(c, p, epoch, blockedFrom), 0, `${p.name} acknowledged without a replica holding the commit`);
      assert.deepEqual((await c.primaries()).map((n) => n.name), [p.name], 'it keeps the leader key: no failover');
      assert.equal((await p.cluster())?.leader?.epoch, epoch);
      const healedAt = now();
      p.replProxy.heal();
      await c.acksAfter(p, epoch, healedAt, 20, 30_000);
      for (const n of c.nodes) if (n !== p) await c.replicaAgain(n, 30_000);
      assertClean(c, 'cut from replicas');
      t.diagnostic(`cut from replicas: ${p.name} kept epoch ${epoch}; commits blocked for ${2 * TTL_MS} ms, resumed after heal`);
    }

    // 4. The etcd leader killed.
    {
      const leader = await c.etcd.leader();
      const killedAt = now();
      await c.etcd.kill(leader);
      // Either the primary bridged the raft election (same epoch) or another was elected (larger
      // epoch): look once a lapsed lease would have shown.
      await sleep(2 * TTL_MS);
      await c.newPrimary('one primary after the etcd leader died', 30_000, { after: epoch - 1 });
      // Commits acknowledged again, by whichever member leads by then (under load leadership can move more than once).
      const firstNew = await waitFor('20 commits acknowledged after the etcd leader died', 30_000, () => {
        const stamps = c!.runs().flatMap((r) => r.acks).filter((a) => a.epoch >= epoch && a.ns >= killedAt).map((a) => a.ns);
        return stamps.length >= 20 ? stamps.reduce((x, y) => (y < x ? y : x)) : undefined;
      }, () => c!.explain());
      // Five commits of whichever member leads by then (so the checker sees its store as it opened).
      const after = await c.steadyPrimary(5, 30_000, { after: epoch - 1, since: killedAt, onElection: (l) => t.diagnostic(`etcd leader killed: ${l}`) });
      await c.etcd.restart(leader);
      assertClean(c, 'etcd leader killed');
      t.diagnostic(`etcd leader ${leader.name} killed: primary ${after.node.name} epoch ${after.epoch} (${after.epoch === epoch ? 'kept its lease' : `failover from ${p.name}`}); fault to first ack ${Number(firstNew - killedAt) / 1e6} ms`);
    }

    const r = c.check();
    t.diagnostic(`checked ${r.acks} acknowledged commits over ${r.runs} writer runs: ${r.spans.map((s) => `${s.node}@${s.epoch}×${s.count}`).join(' ')}`);
    assert.ok(r.spans.length >= 3, 'acknowledgements in at least three epochs (two failovers)');
  });
});
