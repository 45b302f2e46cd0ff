/**
 * Planned switchover (switchover.ts) against a real etcd, members in this process with stand-in
 * replication sources; `recovery-agent cluster switchover` drives them over a small HTTP server
 * mounting the plugin's routes (the token check of a real agent: switchoverAgents.test.ts).
 * The leader key is checked against etcd's own JSON gateway, an oracle independent of the etcd3
 * client. The owner's grant loop the glue will run is stood in for by a timer calling
 * `ownerGrant()` like it.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { ClusterMember } from '../../../plugins/cluster/member.js';
import { clusterRoutes, type ClusterDoc } from '../../../plugins/cluster/routes.js';
import { Switchover, type SwitchoverRecord } from '../../../plugins/cluster/switchover.js';
import type { HttpRoute } from '../../../core/contracts/HttpRoute.js';
import { BIN } from '../../helpers/cli.js';
import { spawn } from 'node:child_process';
import { startEtcd, type EtcdServer } from '../../helpers/etcd.js';
import { until } from '../../helpers/wait.js';
import { standIn, type StandIn } from './standIn.js';

const TTL = 2000;
const log = pino({ level: 'silent' });

interface Grant {
  epoch: number;
  untilNs: bigint;
  at: bigint;
}

interface Node {
  name: string;
  m: ClusterMember;
  sw: Switchover;
  src: StandIn;
  /** Owner grants handed out by the stand-in grant loop. */
  grants: Grant[];
  routes: HttpRoute[];
  server: http.Server | null;
  base: string;
  timer: NodeJS.Timeout | null;
}

function node(etcd: EtcdServer, cluster: string, name: string, src = standIn({ durableLsn: 5000, appliedLsn: 5000 })): Node {
  const n = { name, src, grants: [], server: null, base: '', timer: null } as unknown as Node;
  n.m = new ClusterMember({
    cluster, member: name, etcd: [etcd.url], ttlMs: TTL, marginMs: 500, pollMs: 100, httpAddress: null, source: src, limits: { members: 3, maxLagBytes: 0 }, log,
  });
  n.sw = new Switchover(n.m, src, { ttlMs: TTL, pollMs: 100, log });
  n.routes = clusterRoutes(cluster, n.m, src, undefined, n.sw);
  return n;
}

/** The glue's loop, stood in: grant the owner what ownerGrant() allows, every 100 ms. */
function grantLoop(n: Node): void {
  n.timer = setInterval(() => {
    const g = n.m.ownerGrant();
    if (g) n.grants.push({ ...g, at: process.hrtime.bigint() });
  }, 100);
}

async function etcdGet(url: string, key: string): Promise<{ createRevision: number; value: string } | null> {
  const res = await fetch(`${url}/v3/kv/range`, { method: 'POST', body: JSON.stringify({ key: Buffer.from(key).toString('base64') }) });
  const doc = (await res.json()) as { kvs?: Array<{ create_revision: string; value: string }> };
  const kv = doc.kvs?.[0];
  return kv ? { createRevision: Number(kv.create_revision), value: Buffer.from(kv.value, 'base64').toString('utf8') } : null;
}

async function call(n: Node, method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = n.routes.find((x) => x.method === method && x.path === path)!;
  return (await r.handler({ body, query: {}, params: {}, ip: '127.0.0.1' })) as { status: number; body: Record<string, unknown> };
}

/** Serves the node's routes over HTTP (JSON in, JSON out), advertising the address like an agent. */
async function serve(n: Node): Promise<void> {
  n.server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString('utf8')));
    req.on('end', () => {
      const r = n.routes.find((x) => x.method === req.method && x.path === new URL(req.url!, 'http://x').pathname);
      if (!r) {
        res.writeHead(404).end();
        return;
      }
      void Promise.resolve(r.handler({ body: raw ? JSON.parse(raw) : undefined, query: {}, params: {}, ip: '127.0.0.1' })).then((a) => {
        res.writeHead(a.status, { 'content-type': 'application/json' }).end(JSON.stringify(a.body));
      });
    });
  });
  await new Promise<void>((resolve) => n.server!.listen(0, '127.0.0.1', resolve));
  const addr = `127.0.0.1:${(n.server.address() as AddressInfo).port}`;
  n.base = `http://${addr}`;
  (n.m as unknown as { o: { httpAddress: string } }).o.httpAddress = addr;
}

const leaders = (ns: Node[]): Node[] => ns.filter((n) => n.m.isLeader());

describe('cluster switchover in a real etcd', () => {
  let etcd: EtcdServer;
  const started: Node[] = [];
  before(async () => {
    etcd = await startEtcd();
  });
  after(async () => {
    for (const n of started) {
      if (n.timer) clearInterval(n.timer);
      n.server?.close();
    }
    await Promise.all(started.map((n) => n.m.stop()));
    await etcd?.close();
  });
  const run = async (ns: Node[], http = false): Promise<Node> => {
    for (const n of ns) {
      started.push(n);
      if (http) await serve(n);
      n.m.start();
      grantLoop(n);
    }
    await until(() => leaders(ns).length === 1 && ns.every((x) => x.m.knownPeers().length === ns.length - 1 && x.m.knownLeader() !== null), 8000, 'one leader that every member knows');
    return leaders(ns)[0]!;
  };

  it('hands leadership to the target: larger epoch, no grant outlives the old leadership, the old leader follows, a third member stays out', async () => {
    const ns = [node(etcd, 'sw', 'a'), node(etcd, 'sw', 'b'), node(etcd, 'sw', 'c')];
    const old = await run(ns);
    const epoch1 = old.m.epoch()!;
    const others = ns.filter((n) => n !== old);
    const target = others[0]!;
    const third = others[1]!;
    let thirdLed = false;
    const watchThird = setInterval(() => (thirdLed ||= third.m.isLeader()), 5);
    await until(() => old.grants.length > 0, 2000, 'the owner to be granted');

    const t0 = process.hrtime.bigint();
    const res = await call(old, 'POST', '/cluster/switchover', { to: target.name, timeoutMs: 5000 });
    clearInterval(watchThird);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const rec = res.body.switchover as SwitchoverRecord;
    assert.equal(rec.state, 'done');
    assert.equal(rec.from, old.name);
    assert.equal(rec.to, target.name);
    assert.equal(rec.fromEpoch, epoch1);
    assert.ok(rec.toEpoch! > epoch1, `epoch ${rec.toEpoch} after ${epoch1}`);

    // The target leads, by itself and by etcd's own answer, with a larger epoch.
    assert.equal(target.m.isLeader(), true);
    assert.equal(old.m.isLeader(), false);
    assert.equal(thirdLed, false, 'the third member never led');
    const kv = await etcdGet(etcd.url, '/recovery-agent/sw/leader');
    assert.equal(JSON.parse(kv!.value).member, target.name);
    assert.equal(kv!.createRevision, rec.toEpoch);
    assert.equal(target.m.epoch(), rec.toEpoch);
    // The switchover key stays as the record of the handover (so members that see the leader key
    // change later know it was planned), expired: a later failover is not held back by it.
    const record = JSON.parse((await etcdGet(etcd.url, '/recovery-agent/sw/switchover'))!.value) as { from: string; to: string; epoch: number; untilMs: number };
    assert.deepEqual([record.from, record.to, record.epoch], [old.name, target.name, rec.fromEpoch]);
    assert.ok(record.untilMs <= Date.now(), 'expired');

    // No commit acknowledged under the old epoch after the pause: no grant was handed out after
    // the switchover began, and the last one had run out before the target was elected.
    const late = old.grants.filter((g) => g.at > t0);
    assert.deepEqual(late, [], 'no owner grant after the pause');
    const lastUntil = old.grants.at(-1)!.untilNs;
    const won = target.m.leadershipHistory().find((e) => e.leader && e.epoch === rec.toEpoch)!;
    assert.ok(lastUntil < won.at, `the old owner's last grant (${lastUntil}) ran out before the new leader was elected (${won.at})`);
    // The new leader's grants carry its epoch.
    await until(() => target.grants.some((g) => g.epoch === rec.toEpoch), 2000, 'the new leader to grant its owner');

    // The steps are visible in GET /cluster, in order.
    const doc = (await call(old, 'GET', '/cluster')).body as unknown as ClusterDoc;
    assert.equal(doc.switchover?.state, 'done');
    const steps = doc.switchover!.steps.map((s) => s.step);
    assert.match(steps[0]!, /grants paused/);
    assert.ok(steps.some((s) => /last grant ran out/.test(s)), steps.join('\n'));
    assert.ok(steps.some((s) => /caught up/.test(s)), steps.join('\n'));
    assert.ok(steps.some((s) => /resigned/.test(s)), steps.join('\n'));
    assert.match(steps.at(-1)!, new RegExp(`${target.name} leads at epoch ${rec.toEpoch}`));

    // The old leader follows: a replica, and it stays one.
    await until(() => old.m.knownLeader()?.member === target.name, 2000, 'the old leader to know the new one');
    assert.equal((await call(old, 'GET', '/primary')).status, 503);
    assert.equal((await call(old, 'GET', '/replica')).status, 200);
    await sleep(500);
    assert.deepEqual(leaders(ns).map((n) => n.name), [target.name]);
  });

  it('refuses: not the leader (naming it), unknown member, itself, a target not streaming — and changes nothing', async () => {
    const ns = [node(etcd, 'ref', 'a'), node(etcd, 'ref', 'b')];
    const l = await run(ns);
    const r = ns.find((n) => n !== l)!;
    const epoch = l.m.epoch();

    const notLeader = await call(r, 'POST', '/cluster/switchover', { to: l.name });
    assert.equal(notLeader.status, 409);
    assert.equal((notLeader.body.error as { code: string }).code, 'RA_ERR_CLUSTER_NOT_LEADER');
    assert.equal((notLeader.body.leader as { member: string }).member, l.name);
    assert.match((notLeader.body.error as { message: string }).message, new RegExp(`${l.name} is`));

    const unknown = await call(l, 'POST', '/cluster/switchover', { to: 'zz' });
    assert.equal(unknown.status, 404);
    assert.match((unknown.body.error as { message: string }).message, /no live member zz/);
    assert.equal((await call(l, 'POST', '/cluster/switchover', { to: l.name })).status, 404);

    r.src.s.streaming = false;
    await until(() => l.m.knownPeers().find((p) => p.member === r.name)?.streaming === false, 3000, 'the leader to see the replica not streaming');
    const idle = await call(l, 'POST', '/cluster/switchover', { to: r.name });
    assert.equal(idle.status, 409);
    assert.equal(idle.body.kind, 'not-streaming');
    assert.match((idle.body.error as { message: string }).message, /not streaming/);

    assert.equal(l.m.isLeader(), true);
    assert.equal(l.m.epoch(), epoch);
    assert.ok(l.m.ownerGrant() !== null, 'grants were never paused');
  });

  it('a target not caught up within the timeout: refused, the leader resumes with the same epoch and grants again', async () => {
    const ns = [node(etcd, 'lag', 'a'), node(etcd, 'lag', 'b')];
    const l = await run(ns);
    const r = ns.find((n) => n !== l)!;
    const epoch = l.m.epoch();
    r.src.s.durableLsn = 4000; // behind the leader's 5000
    await until(() => l.m.knownPeers().find((p) => p.member === r.name)?.durableLsn === 4000, 3000, 'the leader to see the lag');
    const started = Date.now();
    const res = await call(l, 'POST', '/cluster/switchover', { to: r.name, timeoutMs: 2500 });
    const took = Date.now() - started;
    assert.equal(res.status, 504);
    assert.equal(res.body.kind, 'not-caught-up');
    assert.match((res.body.error as { message: string }).message, /durable LSN 4000 < the leader's 5000/);
    assert.ok(took >= 2500 && took < 4000, `took ${took} ms`);
    const rec = res.body.switchover as SwitchoverRecord;
    assert.equal(rec.state, 'refused');
    assert.match(rec.steps.at(-1)!.step, /resumed/);
    // Still the leader, same epoch, the owner granted again; the key in etcd is unchanged.
    assert.equal(l.m.isLeader(), true);
    assert.equal(l.m.epoch(), epoch);
    const n = l.grants.length;
    await until(() => l.grants.length > n, 1000, 'grants to resume');
    assert.equal((await etcdGet(etcd.url, '/recovery-agent/lag/leader'))!.createRevision, epoch);
    assert.equal(((await call(l, 'GET', '/cluster')).body as unknown as ClusterDoc).switchover?.state, 'refused');
    // Once caught up, the same switchover goes through.
    r.src.s.durableLsn = 5000;
    const ok = await call(l, 'POST', '/cluster/switchover', { to: r.name, timeoutMs: 5000 });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(r.m.isLeader(), true);
  });

  it('a target that does not campaign: no other member takes over during the switchover; after the bound an election is open again', async () => {
    const ns = [node(etcd, 'gate', 'a'), node(etcd, 'gate', 'b'), node(etcd, 'gate', 'c')];
    const l = await run(ns);
    const [target, third] = ns.filter((n) => n !== l) as [Node, Node];
    target.src.decide = () => ({ eligible: false, reason: 'stand-in: will not campaign' });
    let thirdLedAt: number | null = null;
    const reasons = new Set<string>();
    const watch = setInterval(() => {
      if (thirdLedAt === null && third.m.isLeader()) thirdLedAt = Date.now();
      reasons.add(third.m.eligibility().reason);
    }, 5);
    const t0 = Date.now();
    const res = await call(l, 'POST', '/cluster/switchover', { to: target.name, timeoutMs: 2000 });
    const ended = Date.now();
    clearInterval(watch); // from here on any member may win
    assert.equal(res.status, 504, JSON.stringify(res.body));
    assert.equal(res.body.kind, 'no-takeover');
    const story = (): string => ns.map((n) => `${n.name}: ${n.m.leadershipHistory().map((e) => `${e.leader ? 'won' : 'lost'} ${e.epoch} (${e.reason})`).join(', ')}`).join('; ');
    // Not before the switchover's bound (its key's untilMs, 2000 ms after the resignation, so no
    // earlier than t0 + 2000): from then on an election is open again, and under load the third
    // may win before the 504 reaches this test.
    const bound = t0 + 2000;
    assert.ok(thirdLedAt === null || thirdLedAt >= bound, `${third.name} led ${bound - thirdLedAt!} ms before the bound of the switchover from ${l.name} to ${target.name}: ${story()}`);
    assert.equal((res.body.switchover as SwitchoverRecord).state, 'refused');
    // While the switchover key stood, the third member said why it did not campaign.
    assert.ok(reasons.has(`a switchover from ${l.name} to ${target.name} is under way`), [...reasons].join('; '));
    // Afterwards someone other than the target leads (the third or the old leader).
    await until(() => leaders(ns).length === 1, 3 * TTL, 'a leader after the switchover gave up');
    assert.notEqual(leaders(ns)[0]!.name, target.name);
    assert.ok(ended - t0 >= 2000);
  });

  it('recovery-agent cluster switchover: asked at a replica, forwarded to the leader; the target leads; --json; refusals exit 1', async () => {
    const ns = [node(etcd, 'cli', 'a'), node(etcd, 'cli', 'b')];
    const l = await run(ns, true);
    const r = ns.find((n) => n !== l)!;
    const out = await cliAsync(['cluster', 'switchover', '--to', r.name, '--url', r.base, '--timeout', '5s']);
    assert.equal(out.status, 0, out.stderr + out.stdout);
    assert.match(out.stderr, new RegExp(`sending the switchover to ${l.base}`));
    assert.match(out.stdout, new RegExp(`Switchover ${l.name} → ${r.name}: done`));
    assert.equal(r.m.isLeader(), true);
    assert.equal(l.m.isLeader(), false);

    await until(() => l.m.knownLeader()?.member === r.name, 2000, 'the old leader to know the new one');
    const bad = await cliAsync(['cluster', 'switchover', '--to', 'nobody', '--url', l.base, '--json']);
    assert.equal(bad.status, 1, bad.stderr);
    const doc = JSON.parse(bad.stdout) as { error: { code: string; message: string } };
    assert.equal(doc.error.code, 'RA_ERR_CLUSTER_SWITCHOVER');
    assert.match(doc.error.message, /no live member nobody/);
    const usage = await cliAsync(['cluster', 'switchover', '--to', l.name, '--url', l.base, '--timeout', 'soon']);
    assert.equal(usage.status, 2, usage.stderr);
  });
});

/** The CLI run without blocking this process's event loop (the members in it must keep renewing). */
async function cliAsync(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}
