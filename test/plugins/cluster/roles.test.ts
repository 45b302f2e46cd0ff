// The cluster driving replication, without etcd (#15 items 3-4): RoleDriver against a stand-in
// ReplicationControl and leadership view (promote once per epoch, grants only while the store
// serves the epoch led, follow once per leader, a failed step retried after retryMs), and
// FailoverWatch's primary-failure (not for the first leader, once per lost leader, counted
// when a new one leads). And the config's refusal of two member stores in one agent.
import assert from 'node:assert/strict';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import type { FailureInput } from '../../../core/contracts/Failure.js';
import type { ReplicationControl } from '../../../core/contracts/ReplicationControl.js';
import { validateConfig } from '../../../cli/config.js';
import { FailoverWatch, PRIMARY_FAILURE } from '../../../plugins/cluster/failover.js';
import type { LeaderInfo } from '../../../plugins/cluster/member.js';
import { RoleDriver, type LeadershipView } from '../../../plugins/cluster/roles.js';

const log = pino({ level: 'silent' });

const leaderInfo = (member: string, epoch: number): LeaderInfo => ({ member, epoch, httpAddress: `${member}:80`, replicationAddress: `${member}:7400`, lease: '1' });

function view(): LeadershipView & { leading: boolean; e: number | null; leader: LeaderInfo | null; deadline: bigint | null } {
  return {
    member: 'me',
    leading: false,
    e: null,
    leader: null,
    deadline: null,
    isLeader() {
      return this.leading;
    },
    epoch() {
      return this.e;
    },
    knownLeader() {
      return this.leader;
    },
    leaseDeadline() {
      return this.deadline;
    },
  };
}

function control(failPromote = 0) {
  const calls: string[] = [];
  let fails = failPromote;
  const c: ReplicationControl = {
    members: () => [],
    async promote(store, epoch) {
      calls.push(`promote ${store} ${epoch}`);
      await sleep(5);
      if (fails-- > 0) throw new Error('owner did not come up');
    },
    async follow(store, address, epoch, o) {
      calls.push(`follow ${store} ${address} ${epoch} as ${o?.replicaId}`);
    },
    async grantLease(store, epoch, until) {
      calls.push(`grant ${store} ${epoch} ${until}`);
    },
  };
  return { c, calls };
}

describe('RoleDriver', () => {
  it('promotes once per epoch, grants only after the promotion, follows once per leader', async () => {
    const v = view();
    const { c, calls } = control();
    const d = new RoleDriver({ control: c, store: 's', memberId: 'm1', view: v, timeoutMs: 1000, retryMs: 50, log });
    v.leader = leaderInfo('x', 3);
    d.reconcile();
    d.reconcile();
    await sleep(20);
    assert.deepEqual(calls, ['follow s x:7400 3 as m1']);
    d.renewed(5n);
    assert.equal(calls.length, 1, 'no grant while not leading');

    v.leading = true;
    v.e = 7;
    v.leader = leaderInfo('me', 7);
    v.deadline = 100n;
    d.reconcile();
    assert.equal(d.writable(), false, 'not writable while promoting');
    d.renewed(90n);
    await sleep(30);
    assert.deepEqual(calls.slice(1), ['promote s 7', 'grant s 7 100'], 'the grant follows the promotion at once');
    assert.equal(d.writable(), true);
    d.reconcile();
    d.renewed(200n);
    await sleep(10);
    assert.deepEqual(calls.slice(3), ['grant s 7 200']);
    assert.equal(d.doc().lastGrant?.untilNs, '200');

    // Leadership lost (deadline passed): no grants; another leader: follow it.
    v.leading = false;
    d.renewed(300n);
    v.leader = leaderInfo('y', 9);
    d.reconcile();
    await sleep(10);
    assert.deepEqual(calls.slice(4), ['follow s y:7400 9 as m1']);
    assert.equal(d.doc().step?.state, 'done');
  });

  it('abandons a promotion the leader key no longer calls for (a newer epoch) instead of waiting out its time limit', async () => {
    const v = view();
    const calls: string[] = [];
    const c: ReplicationControl = {
      members: () => [],
      promote: (store, epoch, o) =>
        new Promise<void>((resolve, reject) => {
          calls.push(`promote ${epoch}`);
          if (epoch === 5) return void setTimeout(resolve, 5);
          // Epoch 4's owner never comes up: only the signal ends it.
          o?.signal?.addEventListener('abort', () => reject(new Error('abandoned')));
        }),
      follow: async () => undefined,
      grantLease: async () => undefined,
    };
    const d = new RoleDriver({ control: c, store: 's', memberId: 'm1', view: v, timeoutMs: 30_000, retryMs: 50, log });
    v.leading = true;
    v.e = 4;
    d.reconcile();
    await sleep(10);
    assert.equal(d.doc().step?.state, 'running');
    v.e = 5; // elected again, newer epoch
    d.reconcile(); // abandons epoch 4's step
    await sleep(10);
    assert.equal(d.doc().step?.state, 'failed');
    d.reconcile(); // the next pass starts epoch 5's
    await sleep(20);
    assert.deepEqual(calls, ['promote 4', 'promote 5']);
    assert.equal(d.doc().step?.state, 'done');
    assert.equal(d.writable(), true);
  });

  it('tries a grant the owner could not take again within 20 ms while its deadline is ahead, not at the next renewal', async () => {
    const v = view();
    const grants: string[] = [];
    let refuse = 3; // the restarting owner's control socket is not served for three tries
    const c: ReplicationControl = {
      members: () => [],
      promote: async () => undefined,
      follow: async () => undefined,
      async grantLease(_store, epoch, until) {
        grants.push(`${epoch} ${until}`);
        if (refuse-- > 0) throw new Error('ECONNREFUSED');
      },
    };
    const d = new RoleDriver({ control: c, store: 's', memberId: 'm1', view: v, timeoutMs: 1000, retryMs: 100, log });
    v.leading = true;
    v.e = 4;
    v.deadline = process.hrtime.bigint() + 10_000_000_000n;
    d.reconcile();
    await sleep(20); // promoted; its first grant refused
    assert.match(d.doc().lastGrant?.error ?? '', /ECONNREFUSED/);
    await sleep(400); // no renewal in between: only the retries
    assert.equal(grants.length, 4, grants.join('\n'));
    assert.equal(d.doc().lastGrant?.error, null);
    assert.ok(grants.every((g) => g === `4 ${v.deadline}`));
    // A deadline that passed is never granted again, however often the owner refuses.
    refuse = 100;
    v.deadline = process.hrtime.bigint() + 120_000_000n;
    d.renewed(v.deadline);
    await sleep(400);
    const late = grants.length;
    // Every 20 ms for 120 ms: up to 7 tries (fewer on a loaded machine).
    assert.ok(late - 4 >= 3 && late - 4 <= 8, `${late - 4} tries of the second deadline`);
    await sleep(200);
    assert.equal(grants.length, late, 'no grant after its deadline passed');
    d.stop();
  });

  it('steps aside from the leader key after three failed promotions of one epoch, not before', async () => {
    const v = view();
    const asides: Array<[string, number]> = [];
    const sv = Object.assign(v, {
      async stepAside(reason: string, holdMs: number) {
        asides.push([reason, holdMs]);
        v.leading = false;
        return true;
      },
    });
    const { c, calls } = control(100);
    const d = new RoleDriver({ control: c, store: 's', memberId: 'm1', view: sv, timeoutMs: 1000, retryMs: 30, stepAsideHoldMs: 7000, log });
    v.leading = true;
    v.e = 4;
    for (let i = 0; i < 2; i++) {
      d.reconcile();
      await sleep(50);
    }
    assert.equal(calls.length, 2);
    assert.equal(asides.length, 0, 'two failures: still trying');
    d.reconcile();
    await sleep(50);
    assert.equal(calls.length, 3);
    assert.equal(asides.length, 1);
    assert.match(asides[0]![0], /promotion failed 3 times: .*owner did not come up/);
    assert.equal(asides[0]![1], 7000);
    d.reconcile(); // no longer the leader: no fourth promotion
    await sleep(50);
    assert.equal(calls.length, 3);
  });

  it('shows a failed promotion and retries it after retryMs while still leading', async () => {
    const v = view();
    const { c, calls } = control(1);
    const d = new RoleDriver({ control: c, store: 's', memberId: 'm1', view: v, timeoutMs: 1000, retryMs: 100, log });
    v.leading = true;
    v.e = 4;
    d.reconcile();
    await sleep(30);
    assert.equal(d.doc().step?.state, 'failed');
    assert.match(d.doc().step?.error ?? '', /owner did not come up/);
    d.reconcile();
    assert.equal(calls.length, 1, 'not retried before retryMs');
    await sleep(100);
    d.reconcile();
    await sleep(30);
    assert.deepEqual(calls, ['promote s 4', 'promote s 4']);
    assert.equal(d.doc().step?.state, 'done');
    assert.equal(d.doc().step?.attempt, 2);
  });
});

describe('FailoverWatch and planned switchovers', () => {
  it('publishes nothing and counts no failover for a leader the switchover record names, and does for one it does not', async () => {
    let leader: LeaderInfo | null = leaderInfo('a', 5);
    const published: FailureInput[] = [];
    const failovers: string[] = [];
    const w = new FailoverWatch({
      cluster: 'c',
      view: { member: 'me', knownLeader: () => leader, knownPeers: () => [] },
      publish: (f) => published.push(f),
      onFailover: (from, to) => failovers.push(`${from.epoch}->${to.epoch}`),
      planned: async (lost) => lost.member === 'a' && lost.epoch === 5,
      log,
    });
    w.observe();
    leader = leaderInfo('b', 9); // a handed over to b
    w.observe();
    await sleep(10);
    assert.deepEqual([published.length, failovers], [0, []], 'a planned handover is no failure');
    leader = leaderInfo('c', 12); // b then lost, unplanned
    w.observe();
    await sleep(10);
    assert.equal(published.length, 1);
    assert.equal(published[0]!.kind, PRIMARY_FAILURE);
    assert.deepEqual(failovers, ['9->12']);
  });
});

describe('FailoverWatch', () => {
  it('publishes primary-failure once per lost leader, not for the first one, and counts the failover', () => {
    let leader: LeaderInfo | null = null;
    const published: FailureInput[] = [];
    const failovers: string[] = [];
    const w = new FailoverWatch({
      cluster: 'c',
      view: { member: 'me', knownLeader: () => leader, knownPeers: () => (leader ? [{ member: leader.member, updatedAt: 1000 + leader.epoch }] : []) },
      publish: (f) => published.push(f),
      onFailover: (from, to) => failovers.push(`${from.epoch}->${to.epoch}`),
      log,
    });
    w.observe();
    leader = leaderInfo('a', 5);
    w.observe();
    w.observe();
    assert.equal(published.length, 0, 'a first leader is no failure');
    leader = null;
    w.observe();
    w.observe();
    assert.equal(published.length, 1);
    assert.equal(published[0]!.kind, PRIMARY_FAILURE);
    assert.equal(published[0]!.priority, 'P1');
    assert.equal(published[0]!.subject, 'cluster:c');
    assert.deepEqual(published[0]!.evidence, { cluster: 'c', observer: 'me', leader: 'a', epoch: 5, newLeader: null, newEpoch: null, leaderLastSeenAt: 1005 });
    assert.deepEqual(failovers, []);
    leader = leaderInfo('b', 8);
    w.observe();
    assert.equal(published.length, 1, 'the new leader is the failover ending, not another failure');
    assert.deepEqual(failovers, ['5->8']);
    // Passing straight to another member is a failure too.
    leader = leaderInfo('c', 11);
    w.observe();
    assert.equal(published.length, 2);
    assert.equal(published[1]!.evidence!.newLeader, 'c');
    assert.deepEqual(failovers, ['5->8', '8->11']);
  });
});

describe('replication: one member store per agent', () => {
  it('refuses a config with two member stores at validation, naming them', () => {
    const root = path.join(os.tmpdir(), 'ra-two-members');
    const repl = (port: number) => ({ role: 'member', listen: `127.0.0.1:${port}`, secret: 'two-members-test-secret' });
    const raw = (roles: string[]) => ({
      agent: { dataDir: path.join(root, 'data'), workers: 1, http: { enabled: false } },
      stores: roles.map((role, i) => ({ id: `s${i}`, path: path.join(root, `s${i}`), replication: role === 'member' ? repl(17401 + i) : { role, primary: '127.0.0.1:7400', secret: 'two-members-test-secret' } })),
    });
    assert.throws(
      () => validateConfig(raw(['member', 'replica', 'member']), path.join(root, 'x.yaml'), {}),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, 'RA_ERR_CONFIG');
        assert.match(err.message, /stores\.2\.replication\.role|stores\[2\]/);
        assert.match(err.message, /one member store.*"s0" is one already/s);
        return true;
      },
    );
    assert.equal(validateConfig(raw(['member', 'replica']), path.join(root, 'x.yaml'), {}).stores.length, 2);
  });
});
