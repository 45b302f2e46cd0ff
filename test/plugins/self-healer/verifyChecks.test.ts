// Checks that check (issue #12, item 4): a verify observes the outcome itself. A store a live
// process holds is verified by that owner answering on its control socket, not assumed; an
// action that cannot observe its effect (a webhook, exec without a check) makes the recovery
// applied-unverified, never recovered.
import 'reflect-metadata';
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Agent } from '../../../core/agent.js';
import { validateConfig } from '../../../cli/config.js';
import type { Failure } from '../../../core/contracts/Failure.js';
import { HealingAction } from '../../../core/contracts/HealingAction.js';
import { TransactionRollbackManager } from '../../../core/contracts/TransactionRollbackManager.js';
import { builtinPlugins } from '../../../cli/builtins.js';
import { PageStore } from '../../../plugins/pagestore/pageStore.js';
import { captureLogger } from '../../helpers/logCapture.js';
import { killedWriter, tmpStoreDir } from '../../helpers/store.js';

function agentFor(dir: string, healing: unknown) {
  const base = path.dirname(dir);
  const config = validateConfig({ agent: { dataDir: path.join(base, 'agent'), workers: 1, http: { enabled: false } }, stores: [{ id: 'db', path: dir }], healing }, path.join(base, 'agent.yaml'), {});
  return new Agent({ config, builtins: builtinPlugins, log: captureLogger().log });
}

const failure = (over: Partial<Failure> = {}): Failure => ({ id: `f-${Math.random()}`, kind: 'process-crash', priority: 'P1', subject: 'store:db', evidence: { store: 'db' }, detectedAt: Date.now(), source: 'test', fingerprint: `x-${Math.random()}`, ...over });

function actionOf(agent: Agent, id: string): HealingAction {
  return agent.container.resolveAll(HealingAction).find((a) => a.id === id)!;
}

const hctx = () => ({ signal: new AbortController().signal, log: captureLogger().log, options: {} });

describe('verify observes the outcome', () => {
  it('recover-store verifies a crash recovery by reading the log, not by a second recovery: one crash, one store recovery', async () => {
    const dir = tmpStoreDir('ra-verify-once-');
    const agent = agentFor(dir, {});
    await agent.start(); // nothing there yet: no recovery at start
    try {
      killedWriter({ dir, commits: 50, open: 2, pages: 32 });
      const manager = agent.container.resolve(TransactionRollbackManager);
      const before = manager.stats().recoveries;
      const a = actionOf(agent, 'recover-store');
      const f = failure();
      const out = await a.apply(f, hctx());
      assert.match(String(out?.summary), /recovered store "db": 2 transaction\(s\) rolled back/);
      assert.equal(await a.verify(f, hctx()), true);
      assert.equal(manager.stats().recoveries - before, 1, 'apply recovered once; verify only looked');
    } finally {
      await agent.stop();
    }
  });

  it("recover-store on a store a live process holds: verified by the owner's answer, not by the lock", async () => {
    for (const serves of [true, false]) {
      const dir = tmpStoreDir('ra-verify-');
      const owner = await PageStore.open(dir, { create: true, pageCount: 16, pageSize: 4096, controlSocket: serves });
      const agent = agentFor(dir, {});
      await agent.start();
      try {
        const a = actionOf(agent, 'recover-store');
        const f = failure();
        const out = await a.apply(f, hctx());
        assert.match(String(out?.summary), /open by live process/);
        assert.equal(await a.verify(f, hctx()), serves, serves ? 'the owner answered: verified' : 'no answer from the owner: not verified');
      } finally {
        await agent.stop();
        await owner.close();
      }
    }
  });

  it('exec without a check and webhook make the recovery applied-unverified; exec with a check that passes, recovered', async () => {
    const dir = tmpStoreDir('ra-verify-exec-');
    let hits = 0;
    const server = (await import('node:http')).createServer((_req, res) => {
      hits++;
      res.end('ok');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as { port: number }).port;
    const agent = agentFor(dir, {
      rules: [
        { on: 'unchecked', do: [{ action: 'exec', options: { command: 'true' } }] },
        { on: 'checked', do: [{ action: 'exec', options: { command: 'true', verify: { command: 'true' } } }] },
        { on: 'check-fails', do: [{ action: 'exec', options: { command: 'true', verify: { command: 'false' } } }] },
        { on: 'notify', do: [{ action: 'webhook', options: { url: `http://127.0.0.1:${port}/hook` } }] },
      ],
    });
    await agent.start();
    try {
      const run = async (kind: string) => {
        agent.bus.publish('test', { kind, priority: 'P2', subject: `s-${kind}`, evidence: {} });
        await agent.orchestrator.idle();
        return agent.orchestrator.recentRecoveries().filter((r) => r.kind === kind).at(-1)!;
      };
      const unchecked = await run('unchecked');
      assert.equal(unchecked.outcome, 'applied-unverified', JSON.stringify(unchecked));
      assert.equal(unchecked.escalated, false);
      assert.equal(unchecked.attempts[0]!.unobservable, true);
      assert.equal((await run('checked')).outcome, 'recovered');
      assert.equal((await run('check-fails')).outcome, 'failed');
      const notified = await run('notify');
      assert.equal(notified.outcome, 'applied-unverified', JSON.stringify(notified));
      assert.equal(hits, 1);
      const stats = agent.orchestrator.snapshot();
      assert.equal(stats.recoveriesUnverified, 2);
    } finally {
      await agent.stop();
      server.close();
    }
  });
});
