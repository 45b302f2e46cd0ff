/**
 * The cluster layer against a real etcd, members in this process (separate processes and SIGSTOP:
 * processes.test.ts). ttl 2 s keeps it fast. The epoch is checked against etcd's own answer over
 * its HTTP gateway (an oracle independent of the etcd3 client the plugin uses).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { ClusterMember, type LeadershipEvent } from '../../../plugins/cluster/member.js';
import { clusterRoutes, type ClusterDoc } from '../../../plugins/cluster/routes.js';
import { startEtcd, type EtcdServer } from '../../helpers/etcd.js';
import { until } from '../../helpers/wait.js';
import { standIn, type StandIn } from './standIn.js';

const TTL = 2000;
const log = pino({ level: 'silent' });

interface Node {
  m: ClusterMember;
  src: StandIn;
  events: LeadershipEvent[];
  partitions: number;
}

function node(etcd: EtcdServer, cluster: string, name: string, src = standIn()): Node {
  const n: Node = { src, events: [], partitions: 0, m: undefined as unknown as ClusterMember };
  n.m = new ClusterMember({
    cluster, member: name, etcd: [etcd.url], ttlMs: TTL, marginMs: 500, pollMs: 200, httpAddress: `127.0.0.1:${9000 + name.length}`, source: src, limits: { members: 3, maxLagBytes: 0 }, log,
    onLeadership: (e) => n.events.push(e),
    onPartition: () => n.partitions++,
  });
  return n;
}

/** etcd's own answer for a key, over its JSON gateway: create revision and value. */
async function etcdGet(url: string, key: string): Promise<{ createRevision: number; value: string } | null> {
  const res = await fetch(`${url}/v3/kv/range`, { method: 'POST', body: JSON.stringify({ key: Buffer.from(key).toString('base64') }) });
  const doc = (await res.json()) as { kvs?: Array<{ create_revision: string; value: string }> };
  const kv = doc.kvs?.[0];
  return kv ? { createRevision: Number(kv.create_revision), value: Buffer.from(kv.value, 'base64').toString('utf8') } : null;
}

const leaders = (ns: Node[]): Node[] => ns.filter((n) => n.m.isLeader());

async function route(n: Node, path: string, query: Record<string, unknown> = {}): Promise<{ status: number; body: unknown }> {
  const r = clusterRoutes('c', n.m, n.src).find((x) => x.path === path)!;
  return r.handler({ body: undefined, query, params: {}, ip: '127.0.0.1' });
}

describe('cluster election in a real etcd', () => {
  let etcd: EtcdServer;
  const started: Node[] = [];
  before(async () => {
    etcd = await startEtcd();
  });
  after(async () => {
    await Promise.all(started.map((n) => n.m.stop()));
    await etcd?.close();
  });
  const run = (...ns: Node[]): Node[] => {
    for (const n of ns) {
      started.push(n);
      n.m.start();
    }
    return ns;
  };

  it('three members elect exactly one leader, whose epoch is the leader key\'s create revision; a new leader gets a larger one', async () => {
    const ns = run(node(etcd, 'three', 'a'), node(etcd, 'three', 'b'), node(etcd, 'three', 'c'));
    await until(() => leaders(ns).length === 1, 5000, 'a leader');
    // It stays exactly one for a while (no second winner, no flapping).
    for (let i = 0; i < 20; i++) {
      assert.equal(leaders(ns).length, 1);
      await sleep(50);
    }
    const first = leaders(ns)[0]!;
    const kv = await etcdGet(etcd.url, '/recovery-agent/three/leader');
    assert.ok(kv);
    assert.equal(JSON.parse(kv.value).member, first.m.member);
    assert.equal(first.m.epoch(), kv.createRevision);
    // The others know it.
    await until(() => ns.every((n) => n.m.knownLeader()?.member === first.m.member), 3000, 'every member to know the leader');
    // HTTP: /primary 200 on the leader only, /replica 200 on the others, /cluster lists all three.
    for (const n of ns) {
      assert.equal((await route(n, '/primary')).status, n === first ? 200 : 503, n.m.member);
      assert.equal((await route(n, '/replica')).status, n === first ? 503 : 200, n.m.member);
      assert.equal((await route(n, '/liveness')).status, 200);
      assert.equal((await route(n, '/readiness')).status, 200);
    }
    await until(() => ns.every((n) => n.m.knownPeers().length === 2), 3000, 'every member to see the two others');
    const doc = (await route(ns[0]!, '/cluster')).body as ClusterDoc;
    assert.deepEqual(doc.members.map((r) => r.member), ['a', 'b', 'c']);
    assert.equal(doc.leader?.member, first.m.member);
    assert.equal(doc.leader?.epoch, kv.createRevision);
    assert.deepEqual(doc.members.filter((r) => r.role === 'leader').map((r) => r.member), [first.m.member]);

    // The leader stops (revokes its lease): another takes over with a larger epoch.
    await first.m.stop();
    const rest = ns.filter((n) => n !== first);
    await until(() => leaders(rest).length === 1, 5000, 'a new leader');
    const second = leaders(rest)[0]!;
    const kv2 = await etcdGet(etcd.url, '/recovery-agent/three/leader');
    assert.equal(second.m.epoch(), kv2!.createRevision);
    assert.ok(second.m.epoch()! > first.m.epoch()!, `epoch ${second.m.epoch()} after ${kv.createRevision}`);
  });

  it('/replica?lag= bounds the lag to the leader\'s durable LSN', async () => {
    const a = node(etcd, 'lag', 'a', standIn({ durableLsn: 10_000, appliedLsn: 10_000 }));
    const b = node(etcd, 'lag', 'b', standIn({ durableLsn: 9000, appliedLsn: 6000 }));
    b.src.decide = () => ({ eligible: false, reason: 'stand-in: behind' });
    run(a, b);
    await until(() => a.m.isLeader() && b.m.knownPeers().some((p) => p.member === 'a' && p.role === 'leader') && b.m.knownLeader() !== null, 5000, 'a to lead and b to see it');
    assert.equal((await route(b, '/replica', { lag: '4000' })).status, 200);
    const over = await route(b, '/replica', { lag: '3999' });
    assert.equal(over.status, 503);
    assert.equal((over.body as { lagBytes: number }).lagBytes, 4000);
    const doc = (await route(b, '/cluster')).body as ClusterDoc;
    assert.deepEqual(doc.members.map((r) => [r.member, r.role, r.lagBytes]), [['a', 'leader', 0], ['b', 'replica', 4000]]);
    assert.equal(doc.self.eligible, false);
    // Sizes with a unit, as Patroni takes them (SI: 4kB = 4000 bytes); garbage is a 400, not a 200.
    assert.equal((await route(b, '/replica', { lag: '4kB' })).status, 200);
    assert.equal((await route(b, '/replica', { lag: '3.999kB' })).status, 503);
    await assert.rejects(route(b, '/replica', { lag: 'lots' }), /lag must be a size/);
    // A member with a store (roles) answers 200 only while it streams from the primary.
    const withStore = (streaming: boolean) => clusterRoutes('c', b.m, { ...b.src, state: () => ({ ...b.src.state(), streaming }) }, { writable: () => false, doc: () => ({ store: 's', writable: false, step: null, lastGrant: null }) }).find((x) => x.path === '/replica')!;
    const req = { body: undefined, query: {}, params: {}, ip: '127.0.0.1' };
    assert.equal((await withStore(true).handler(req)).status, 200);
    const cut = await withStore(false).handler(req);
    assert.equal(cut.status, 503);
    assert.match(JSON.stringify(cut.body), /not streaming from the primary/);
  });

  it('an ineligible member never wins, even with the leader key free', async () => {
    const a = node(etcd, 'inel', 'a');
    const b = node(etcd, 'inel', 'b');
    b.src.decide = () => ({ eligible: false, reason: 'stand-in: not caught up' });
    run(a, b);
    await until(() => a.m.isLeader(), 5000, 'a to lead');
    await a.m.stop();
    await sleep(3 * TTL);
    assert.equal(b.m.isLeader(), false);
    assert.equal(b.events.length, 0);
    assert.equal(await etcdGet(etcd.url, '/recovery-agent/inel/leader'), null);
    assert.equal(b.m.eligibility().reason, 'stand-in: not caught up');
    // Once eligible, it wins.
    b.src.decide = () => ({ eligible: true, reason: 'stand-in: caught up' });
    await until(() => b.m.isLeader(), 3000, 'b to lead once eligible');
  });

  it('a leader that steps aside gives the key up at once and does not campaign again for its hold', async () => {
    const a = node(etcd, 'aside', 'a');
    const b = node(etcd, 'aside', 'b');
    b.src.decide = () => ({ eligible: false, reason: 'stand-in: not yet' });
    run(a, b);
    await until(() => a.m.isLeader(), 5000, 'a to lead');
    const epoch = a.m.epoch()!;
    b.src.decide = () => ({ eligible: true, reason: 'stand-in: caught up' });
    assert.equal(await a.m.stepAside('its application will not start', 3000), true);
    assert.equal(a.m.isLeader(), false);
    await until(() => b.m.isLeader(), 2000, 'b to lead once a stepped aside (well before a TTL lapses)');
    assert.ok(b.m.epoch()! > epoch);
    assert.match(a.events.at(-1)!.reason, /stepped aside: its application will not start/);
    // b goes: the key is free, but a holds off until its hold has passed.
    const goneAt = Date.now();
    await b.m.stop();
    await sleep(1000);
    assert.equal(a.m.isLeader(), false, 'a campaigned during its hold');
    assert.match(a.m.eligibility().reason, /^stepped aside/);
    await until(() => a.m.isLeader(), 5000, 'a to lead again after its hold');
    assert.ok(Date.now() - goneAt >= 1500, 'a led again only after its hold');
  });

  it('a leader stepping aside whose delete is answered late still says it stepped aside (its own watch saw the key go first)', async () => {
    const a = node(etcd, 'asidelate', 'a');
    run(a);
    await until(() => a.m.isLeader(), 5000, 'a to lead');
    const client = a.m.etcd;
    const orig = client.if.bind(client);
    client.if = ((...args: Parameters<typeof orig>) => {
      const b = orig(...args);
      const commit = b.commit.bind(b);
      // Applied by etcd at once, answered 400 ms later (inside stepAside's limit of ttl/3).
      b.commit = async () => {
        const r = await commit();
        await sleep(400);
        return r;
      };
      return b;
    }) as typeof client.if;
    assert.equal(await a.m.stepAside('its store will not open', 3000), true);
    client.if = orig;
    assert.equal(a.m.isLeader(), false);
    const downs = a.events.filter((e) => !e.leader);
    assert.equal(downs.length, 1, downs.map((e) => e.reason).join(' | '));
    assert.match(downs[0]!.reason, /^stepped aside: its store will not open$/);
  });

  it('a campaign txn etcd applied but answered too late does not leave the key held by nobody', async () => {
    const a = node(etcd, 'late', 'a');
    // The first txn's answer arrives after the campaign's limit (ttl/3): the key is a's, unclaimed.
    const client = a.m.etcd;
    const orig = client.if.bind(client);
    let slowed = 0;
    client.if = ((...args: Parameters<typeof orig>) => {
      const b = orig(...args);
      const commit = b.commit.bind(b);
      b.commit = async () => {
        const r = await commit();
        if (slowed++ === 0) await sleep(1000);
        return r;
      };
      return b;
    }) as typeof client.if;
    run(a);
    await sleep(1500);
    const b = node(etcd, 'late', 'b');
    run(b);
    await until(() => a.m.isLeader() || b.m.isLeader(), 8000, 'a leader (before, the key named a on its live lease and nobody ever led)');
  });

  it('counts the members it sees when the configured size is smaller (a sync quorum never shrinks below the cluster)', async () => {
    const sizes: number[] = [];
    const mk = (name: string): Node => {
      const src = standIn();
      src.decide = (_peers, limits) => {
        sizes.push(limits.members);
        return { eligible: false, reason: 'stand-in: recording' };
      };
      const n: Node = { src, events: [], partitions: 0, m: undefined as unknown as ClusterMember };
      n.m = new ClusterMember({ cluster: 'size', member: name, etcd: [etcd.url], ttlMs: TTL, marginMs: 500, pollMs: 200, httpAddress: null, source: src, limits: { members: 1, maxLagBytes: 0 }, log });
      return n;
    };
    run(mk('a'), mk('b'), mk('c'));
    await until(() => sizes.includes(3), 5000, 'an election that counts the three members it sees, not size 1');
  });

  it('a leader whose keepalives stop gets through its deadline before anyone else is elected', async () => {
    const ns = run(node(etcd, 'block', 'a'), node(etcd, 'block', 'b'));
    await until(() => leaders(ns).length === 1, 5000, 'a leader');
    const old = leaders(ns)[0]!;
    const other = ns.find((n) => n !== old)!;
    // Block its keepalives (a dead stream that never answers): the lease stays granted in etcd
    // until its TTL runs out, and our own clock must give it up first.
    const lease = (old.m as unknown as { lease: { keepaliveOnce: () => Promise<never> } }).lease;
    lease.keepaliveOnce = () => new Promise<never>(() => undefined);
    await until(() => other.m.isLeader(), 3 * TTL, 'the other member to lead');
    const lost = old.events.find((e) => !e.leader);
    const won = other.events.find((e) => e.leader);
    assert.ok(lost && won, 'both changes were stamped');
    assert.ok(lost.at < won.at, `the old leader stopped claiming (${lost.at}) before the new one was elected (${won.at})`);
    assert.ok(won.epoch! > old.events[0]!.epoch!);
    assert.equal((await route(old, '/primary')).status, 503);
  });

  it('etcd killed: the leader\'s /primary turns 503 within the ttl, and network-partition is raised', async () => {
    const ns = run(node(etcd, 'kill', 'a'), node(etcd, 'kill', 'b'));
    await until(() => leaders(ns).length === 1, 5000, 'a leader');
    const l = leaders(ns)[0]!;
    assert.equal((await route(l, '/primary')).status, 200);
    const t0 = process.hrtime.bigint();
    await etcd.kill();
    await until(() => !l.m.isLeader(), TTL + 200, '/primary to turn 503');
    const tookMs = Number(process.hrtime.bigint() - t0) / 1e6;
    assert.ok(tookMs <= TTL, `took ${tookMs} ms`);
    assert.equal((await route(l, '/primary')).status, 503);
    await until(() => l.partitions === 1, TTL, 'network-partition');
    assert.equal(l.m.partitionedFromEtcd(), true);
  });
});
