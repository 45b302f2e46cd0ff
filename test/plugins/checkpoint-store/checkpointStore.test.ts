// The checkpoint-store action, through the agent (failure bus → orchestrator → self-healer):
// a store nobody has open is checkpointed and its old WAL recycled; a store a live process has
// open is checkpointed by its owner, asked through the store's control socket; an owner without
// one is not touched, and the failure is escalated with an error naming the owner.
import 'reflect-metadata';
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Agent } from '../../../core/agent.js';
import { validateConfig } from '../../../cli/config.js';
import type { Failure } from '../../../core/contracts/Failure.js';
import { HealingAction } from '../../../core/contracts/HealingAction.js';
import checkpointStore from '../../../plugins/checkpoint-store/index.js';
import pagestore from '../../../plugins/pagestore/index.js';
import { PageStore } from '../../../plugins/pagestore/pageStore.js';
import { walUsage } from '../../../plugins/pagestore/walUsage.js';
import selfHealer from '../../../plugins/self-healer/index.js';
import { captureLogger } from '../../helpers/logCapture.js';
import { killedWriter, tmpStoreDir } from '../../helpers/store.js';

const SEGMENT = 64 * 1024;

async function withAgent(fn: (agent: Agent, store: string) => Promise<void>): Promise<void> {
  const store = tmpStoreDir();
  // 1500 commits with no checkpoint, then SIGKILL: many WAL segments, a stale lock.
  killedWriter({ dir: store, commits: 1500, open: 1, pages: 32, segmentSize: SEGMENT });
  const dir = path.dirname(store);
  const config = validateConfig({ agent: { dataDir: path.join(dir, 'agent'), workers: 1, http: { enabled: false } }, stores: [{ id: 'demo', path: store }] }, path.join(dir, 'agent.yaml'), {});
  const agent = new Agent({ config, builtins: [pagestore, selfHealer, checkpointStore], log: captureLogger().log });
  await agent.start();
  try {
    await fn(agent, store);
  } finally {
    await agent.stop();
  }
}

const predicted = (evidence: Record<string, unknown>) => ({ kind: 'predicted-exhaustion', priority: 'P2' as const, subject: 'disk:/data', evidence: { unit: 'bytes', stores: ['demo'], ratePerSecond: 1000, horizonSeconds: 300, ...evidence } });

describe('checkpoint-store action', () => {
  it('checkpoints a store nobody has open and recycles its WAL, answering predicted-exhaustion', async () => {
    await withAgent(async (agent, store) => {
      const before = await walUsage(store);
      assert.ok(before.segments > 5, `WAL segments before: ${before.segments}`);
      const f = agent.bus.publish('test', predicted({}));
      await agent.orchestrator.idle();
      const r = agent.orchestrator.recentRecoveries().find((x) => x.failureId === f.id)!;
      assert.equal(r.outcome, 'recovered', JSON.stringify(r));
      assert.deepEqual(r.attempts.map((a) => [a.action, a.verified]), [['checkpoint-store', true]]);
      assert.match(r.attempts[0]!.summary!, /checkpointed "demo": \d+ WAL segment\(s\) recycled/);
      const after = await walUsage(store);
      assert.ok(after.segments <= 2 && after.sinceCheckpointBytes <= SEGMENT, `after: ${after.segments} segments, ${after.sinceCheckpointBytes} bytes since the checkpoint`);
      // Committed data survived: the store opens with nothing left to redo or undo.
      const s = await PageStore.open(store);
      assert.equal(s.recovery.recordsRedone, 0);
      await s.close();
    });
  });

  it('asks a live owner to checkpoint through its control socket, and its WAL is recycled', async () => {
    await withAgent(async (agent, store) => {
      const owner = await PageStore.open(store, { checkpointIntervalMs: 0, checkpointWalBytes: 1 << 30 }); // this process is the live owner now
      try {
        for (let i = 0; i < 400; i++) {
          const tx = owner.begin();
          await tx.write(1 + (i % 31), 0, Buffer.alloc(200, i & 0xff));
          await tx.commit();
        }
        const before = await walUsage(store);
        assert.ok(before.segments > 3, `WAL segments before: ${before.segments}`);
        const checkpointsBefore = owner.counters.checkpoints; // the open's own, in the background
        const f = agent.bus.publish('test', predicted({}));
        await agent.orchestrator.idle();
        const r = agent.orchestrator.recentRecoveries().find((x) => x.failureId === f.id)!;
        assert.equal(r.outcome, 'recovered', JSON.stringify(r));
        const after = await walUsage(store);
        assert.ok(after.segments <= 2, `after: ${after.segments} segments`);
        assert.equal(owner.counters.checkpoints, checkpointsBefore + 1, 'the owner checkpointed');
      } finally {
        await owner.close();
      }
    });
  });

  it('fails, naming the live owner, when the owner serves no control socket; the healer escalates', async () => {
    await withAgent(async (agent, store) => {
      const owner = await PageStore.open(store, { controlSocket: false });
      try {
        const action = agent.container.resolveAll(HealingAction).find((a) => a.id === 'checkpoint-store')!;
        const failure = { ...predicted({}), id: 'f-1', detectedAt: Date.now(), source: 'test', fingerprint: 'x' } as Failure;
        await assert.rejects(action.apply(failure, { signal: AbortSignal.timeout(10_000), log: captureLogger().log, options: {} }), {
          code: 'RA_ERR_STORE_LOCKED',
          message: new RegExp(`store "demo" is open by live process ${process.pid}, which serves no control socket`),
        });
        const f = agent.bus.publish('test', predicted({}));
        await agent.orchestrator.idle();
        const r = agent.orchestrator.recentRecoveries().find((x) => x.failureId === f.id)!;
        assert.equal(r.outcome, 'failed');
        assert.equal(r.escalated, true);
        assert.match(r.attempts[0]!.error!, /open by live process \d+/);
      } finally {
        await owner.close();
      }
    });
  });

  it('takes only failures about space that name a configured store', async () => {
    await withAgent(async (agent) => {
      const action = agent.container.resolveAll(HealingAction).find((a) => a.id === 'checkpoint-store')!;
      const f = (over: Partial<Failure>) => ({ id: 'f', kind: 'predicted-exhaustion', priority: 'P2', subject: 'disk:/x', evidence: {}, detectedAt: 0, source: 't', fingerprint: 'x', ...over }) as Failure;
      assert.equal(action.canHandle(f({ evidence: { unit: 'bytes', stores: ['demo'] } })), true);
      assert.equal(action.canHandle(f({ subject: 'store:demo', evidence: { unit: 'bytes' } })), true);
      assert.equal(action.canHandle(f({ evidence: { unit: 'inodes', stores: ['demo'] } })), false);
      assert.equal(action.canHandle(f({ evidence: { unit: 'bytes', stores: ['other'] } })), false);
      assert.equal(action.canHandle(f({ subject: 'memory', evidence: { unit: 'bytes' } })), false);
    });
  });
});
