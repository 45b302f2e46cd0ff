// Cluster members without the cluster (#15 items 2 and 3, the replication side): two agents,
// in-process, each with a `member` store and the same writer application in `processes`. The
// test plays the cluster through ReplicationControl: nothing runs while undecided; A promoted
// at epoch 2 starts its writer, whose commits are acknowledged only under A's lease grants and
// (sync) once B, following A, has them; then A's host dies (writer SIGKILLed, agent stopped)
// and B is promoted at epoch 3: its application starts there, and B's store holds every commit
// A's writer acknowledged. A's host comes back and A follows B (across B's fork, or rebuilt from a
// base copy when its log went past it), ending with B's pages.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { Agent } from '../../../core/agent.js';
import { ReplicationControl } from '../../../core/contracts/ReplicationControl.js';
import { ProcessSupervisor } from '../../../core/contracts/ProcessSupervisor.js';
import { validateConfig } from '../../../cli/config.js';
import crashDetector from '../../../plugins/crash-detector/index.js';
import pagestore from '../../../plugins/pagestore/index.js';
import { PAGE_HEADER_SIZE } from '../../../plugins/pagestore/format.js';
import { PageStore } from '../../../plugins/pagestore/pageStore.js';
import replication from '../../../plugins/replication/index.js';
import { captureLogger } from '../../helpers/logCapture.js';
import { repoRoot } from '../../helpers/paths.js';
import { copyStoreDir } from '../../helpers/store.js';
import { acked, freePort, until } from './agentHarness.js';

const PAGES = 32;
const writerJs = path.join(repoRoot(), 'dist', 'test', 'plugins', 'replication', 'ackWriter.js');

interface Member {
  agent: Agent;
  control: ReplicationControl;
  supervisor: ProcessSupervisor;
  stdout: string;
  address: string;
  lines: () => Array<Record<string, unknown>>;
}

async function member(root: string, name: string, port: number, writerArgs: string[]): Promise<Member> {
  const dataDir = path.join(root, `${name}-data`);
  const config = validateConfig(
    {
      agent: { dataDir, workers: 1, http: { enabled: false } },
      stores: [{ id: 's', path: path.join(root, name), replication: { role: 'member', listen: `127.0.0.1:${port}`, secretFile: path.join(root, 'repl.secret'), mode: 'sync', syncTimeoutMs: 60_000 } }],
      processes: [{ id: 'app', command: process.execPath, args: [writerJs, '--store', path.join(root, name), '--control', ...writerArgs], store: 's', restart: { policy: 'never' } }],
    },
    path.join(root, `${name}.yaml`),
    {},
  );
  const cap = captureLogger();
  const agent = new Agent({ config, log: cap.log, builtins: [pagestore, replication, crashDetector] });
  await agent.start();
  return {
    agent,
    control: agent.host.contributions(ReplicationControl).at(-1)!.value,
    supervisor: agent.host.contributions(ProcessSupervisor).at(-1)!.value,
    stdout: path.join(dataDir, 'processes', 'app.stdout'),
    address: `127.0.0.1:${port}`,
    lines: cap.lines,
  };
}

/** Grants `m`'s owner a 1 s lease every 200 ms, as the cluster plugin does after each keepalive; returns the stop. */
function leases(m: Member, epoch: number): () => void {
  const t = setInterval(() => void m.control.grantLease('s', epoch, process.hrtime.bigint() + 1_000_000_000n).catch(() => undefined), 200);
  return () => clearInterval(t);
}

describe('cluster members driven through ReplicationControl', () => {
  const agents: Agent[] = [];
  after(async () => {
    for (const a of agents) await a.stop().catch(() => undefined);
  });

  it('runs the application only on the promoted member, and loses no acknowledged commit when the other is promoted', async () => {
    const root = path.join(os.tmpdir(), `ra-member-${process.pid}-${Date.now()}`);
    mkdirSync(root);
    await (await PageStore.open(path.join(root, 'a'), { create: true, pageCount: PAGES, controlSocket: false })).close();
    copyStoreDir(path.join(root, 'a'), path.join(root, 'b'));
    writeFileSync(path.join(root, 'repl.secret'), 'member-role-test-secret-bytes\n', { mode: 0o600 });
    const a = await member(root, 'a', await freePort(), ['--concurrency', '4']);
    agents.push(a.agent);
    const b = await member(root, 'b', await freePort(), ['--idle']);
    agents.push(b.agent);

    for (const m of [a, b]) {
      assert.equal(m.control.members()[0]!.role, 'undecided');
      const app = m.supervisor.get('app')!;
      assert.equal(app.pid, null, 'undecided: the application is held');
      assert.match(app.heldBy ?? '', /not yet the primary/);
    }

    await a.control.promote('s', 2, { timeoutMs: 20_000 });
    const stopA = leases(a, 2);
    assert.ok(a.supervisor.get('app')!.pid, 'the primary runs the application');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(acked(a.stdout).acks.length, 0, 'sync, no replica yet: nothing acknowledged');
    await b.control.follow('s', a.address, 2, { timeoutMs: 20_000 });
    await until('100 acknowledged commits', () => (acked(a.stdout).acks.length >= 100 ? true : undefined), 30_000).catch((err: unknown) => {
      throw new Error(`${String(err)}; A: ${JSON.stringify(a.control.members())} ${JSON.stringify(a.lines().slice(-8))}; B: ${JSON.stringify(b.control.members())} ${JSON.stringify(b.lines().slice(-8))}`);
    });
    assert.equal(b.supervisor.get('app')!.pid, null, 'the replica does not run the application');
    assert.equal(b.control.members()[0]!.role, 'replica');

    // Host A dies: its writer and its agent, at once; no more leases.
    stopA();
    process.kill(a.supervisor.get('app')!.pid!, 'SIGKILL');
    await a.agent.stop();
    const acks = acked(a.stdout).acks;

    await b.control.promote('s', 3, { timeoutMs: 20_000 });
    assert.equal(b.control.members()[0]!.role, 'primary');
    assert.ok(b.supervisor.get('app')!.pid, 'the application runs on the new primary');

    // A's host comes back: an undecided member, then told to follow B.
    const a2 = await member(root, 'a', Number(a.address.split(':')[1]), ['--concurrency', '4']);
    agents.push(a2.agent);
    assert.equal(a2.supervisor.get('app')!.pid, null, 'the old primary does not start its application');
    await a2.control.follow('s', b.address, 3, { timeoutMs: 20_000 });
    const bFlushed = async () => (await b.agent.host.contributions(ReplicationControl).at(-1)!.value.members()[0]!).durableLsn;
    await until('A to follow B at epoch 3, caught up', async () => {
      const m = a2.control.members()[0]!;
      return m.epoch === 3 && m.streaming && m.appliedLsn >= (await bFlushed()) ? m : undefined;
    }, 30_000).catch((err: unknown) => {
      throw new Error(`${String(err)}; A: ${JSON.stringify(a2.control.members())} ${JSON.stringify(a2.lines().filter((l) => (l.level as number) >= 40).slice(-6))}`);
    });
    // B is elected again at a newer epoch (its lease lapsed and it won again): its owner reads the
    // epoch at open, so the application is restarted, and A follows across the new fork.
    const before = b.supervisor.get('app')!.pid;
    await b.control.promote('s', 5, { timeoutMs: 20_000 });
    assert.notEqual(b.supervisor.get('app')!.pid, before, 'the application was restarted for the new epoch');
    await until('A to follow B at epoch 5', async () => {
      const m = a2.control.members()[0]!;
      return m.epoch === 5 && m.streaming && m.appliedLsn >= (await bFlushed()) ? m : undefined;
    }, 30_000);
    // A promotion abandoned by a newer role change ends at once, not at its time limit.
    const abort = new AbortController();
    abort.abort();
    await assert.rejects(b.control.promote('s', 6, { timeoutMs: 20_000, signal: abort.signal }), /abandoned/);
    await a2.agent.stop();
    await b.agent.stop(); // the idle writer closes the store cleanly

    const store = await PageStore.open(path.join(root, 'b'), { controlSocket: false });
    try {
      const best = new Map<number, number>();
      for (const { seq, page } of acks) best.set(page, Math.max(best.get(page) ?? 0, seq));
      for (const [page, seq] of best) {
        const { image } = await store.readPage(page);
        const v = Number(image.readBigUInt64LE(PAGE_HEADER_SIZE));
        assert.ok(v >= seq, `page ${page} holds ${v}, but commit ${seq} to it was acknowledged on A`);
      }
      assert.ok(acks.length >= 100);
    } finally {
      await store.close();
    }
    // A, the old primary, now holds B's pages.
    const sa = await PageStore.open(path.join(root, 'a'), { controlSocket: false });
    const sb = await PageStore.open(path.join(root, 'b'), { controlSocket: false });
    try {
      for (let id = 1; id < PAGES; id++) {
        const x = (await sa.readPage(id)).image.subarray(PAGE_HEADER_SIZE);
        const y = (await sb.readPage(id)).image.subarray(PAGE_HEADER_SIZE);
        assert.ok(x.equals(y), `page ${id} differs between the rejoined old primary and the new primary`);
      }
    } finally {
      await sa.close();
      await sb.close();
    }
  });
  it('a promotion that fails publishes the log\'s epoch and the durable LSN the replica reached, not the promotion\'s epoch', async () => {
    const root = path.join(os.tmpdir(), `ra-member-fail-${process.pid}-${Date.now()}`);
    mkdirSync(root);
    await (await PageStore.open(path.join(root, 'a'), { create: true, pageCount: PAGES, controlSocket: false })).close();
    copyStoreDir(path.join(root, 'a'), path.join(root, 'b'));
    writeFileSync(path.join(root, 'repl.secret'), 'member-role-test-secret-bytes\n', { mode: 0o600 });
    const a = await member(root, 'a', await freePort(), ['--concurrency', '4']);
    agents.push(a.agent);
    // B's application exits at once (more writers than pages): its promotion can never complete.
    const b = await member(root, 'b', await freePort(), ['--concurrency', '1000']);
    agents.push(b.agent);
    await a.control.promote('s', 2, { timeoutMs: 20_000 });
    const stopA = leases(a, 2);
    await b.control.follow('s', a.address, 2, { timeoutMs: 20_000 });
    await until('50 acknowledged commits', () => (acked(a.stdout).acks.length >= 50 ? true : undefined), 30_000);
    stopA();
    process.kill(a.supervisor.get('app')!.pid!, 'SIGKILL');
    await a.agent.stop();
    const reached = b.control.members()[0]!;
    assert.equal(reached.epoch, 2);
    assert.ok(reached.durableLsn > 0);

    await assert.rejects(b.control.promote('s', 3, { timeoutMs: 2000 }), /has not come up|serves epoch/);
    const after = b.control.members()[0]!;
    // Before, it published epoch 3 (a log it never forked) and the durable LSN it had when its
    // agent started: every other member looked older, or this one looked behind what it holds.
    assert.equal(after.epoch, 2, 'the log is still of epoch 2');
    assert.ok(after.durableLsn >= reached.durableLsn, `durable ${after.durableLsn}, the replica had reached ${reached.durableLsn}`);
  });
});
