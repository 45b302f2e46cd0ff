// The primary's agent after a replica reconnected (#14, adversarial review): the owner lists its
// last few gone sessions (frozen where they stopped) beside the live one, under the same replica
// id. They are history: never in the lag metrics nor the lag check, so a replica that keeps up
// raises no `replica-lagging` and its metric is its live session's. Two agents as processes; the
// replica agent is kill -9'd once and started again (the primary then holds a gone and a
// streaming `r1`); a writer commits on the primary the whole time. Its time away is a real lag;
// once it has caught up, no episode opens and the live entry is not marked lagging.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { PageStore } from '../../../plugins/pagestore/pageStore.js';
import { repoRoot } from '../../helpers/paths.js';
import { copyStoreDir } from '../../helpers/store.js';
import { exited, freePort, killAgents, replicationOf, startAgent, until, type Agent } from './agentHarness.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface PrimaryView {
  replicas: Array<{ id: string; state: string; lagBytes: number; lagMs: number; lagging: boolean }>;
}

describe('lag of a replica that reconnected', () => {
  const agents: Agent[] = [];
  // SIGTERM first: the primary agent stops its supervised writer (a SIGKILLed agent leaves it running).
  after(async () => {
    for (const a of agents) if (a.child.exitCode === null && a.child.signalCode === null) a.child.kill('SIGTERM');
    await Promise.race([Promise.all(agents.map((a) => exited(a.child))), sleep(10_000)]);
    killAgents(agents);
  });

  it('a gone session is history: no replica-lagging and no stale lag metric for a replica that keeps up', async () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'ra-gone-lag-'));
    const primaryDir = path.join(root, 'primary');
    await (await PageStore.open(primaryDir, { create: true, pageCount: 64, controlSocket: false })).close();
    copyStoreDir(primaryDir, path.join(root, 'replica'));
    writeFileSync(path.join(root, 'repl.secret'), 'a-gone-replica-lag-test-secret\n', { mode: 0o600 });
    const port = await freePort();
    const writerJs = path.join(repoRoot(), 'dist', 'examples', 'demo-writer.js');
    const primary = startAgent(root, 'primary', `stores:
  - id: p
    path: ./primary
    replication: { role: primary, listen: 127.0.0.1:${port}, secretFile: ./repl.secret, maxLagMs: 3s }
processes:
  - id: writer
    command: ${JSON.stringify(process.execPath)}
    args: [${JSON.stringify(writerJs)}, --store, ./primary, --rate, '200', --pages, '64']
    store: p
`);
    agents.push(primary);
    const pBase = await primary.base;
    const replicaYaml = `stores:
  - id: r
    path: ./replica
    replication: { role: replica, primary: 127.0.0.1:${port}, secretFile: ./repl.secret, id: r1 }
`;
    let replica = startAgent(root, 'replica', replicaYaml);
    agents.push(replica);
    let rBase = await replica.base;
    await until('streaming', async () => ((await replicationOf<{ state: string }>(rBase, 'r')).state === 'streaming' ? true : undefined), 60_000);
    replica.child.kill('SIGKILL');
    await exited(replica.child);
    replica = startAgent(root, 'replica', replicaYaml);
    agents.push(replica);
    rBase = await replica.base;
    await until('streaming again', async () => ((await replicationOf<{ state: string }>(rBase, 'r')).state === 'streaming' ? true : undefined), 60_000);
    // Its time away was a real lag (an episode may open and close for it); from its catch-up on, none.
    await until('the primary lists the gone r1 beside the live one, caught up', async () => {
      const p = await replicationOf<PrimaryView>(pBase, 'p');
      return p.replicas.some((x) => x.state === 'gone') && p.replicas.some((x) => x.state === 'streaming' && x.lagMs < 1000 && !x.lagging) ? true : undefined;
    }, 60_000);
    const caughtUp = Date.now();
    await sleep(6000); // past maxLagMs (3 s) twice over
    const p = await replicationOf<PrimaryView>(pBase, 'p');
    const live = p.replicas.find((x) => x.state === 'streaming');
    assert.ok(live && live.lagMs < 3000, `precondition: the live r1 keeps up (${JSON.stringify(p.replicas)})`);
    assert.ok(p.replicas.filter((x) => x.state === 'gone').every((x) => !x.lagging), 'a gone session is not marked lagging');
    const { failures } = (await (await fetch(`${pBase}/failures`)).json()) as { failures: Array<{ kind: string; detectedAt: number; evidence?: unknown }> };
    const lagging = failures.filter((f) => f.kind === 'replica-lagging' && f.detectedAt >= caughtUp);
    assert.equal(live.lagging, false, 'the live r1 is not lagging');
    assert.equal(lagging.length, 0, `replica-lagging failure(s) for a replica that keeps up (from its gone session): ${JSON.stringify(lagging)}`);
    const metrics = (await (await fetch(`${pBase}/metrics`)).text()).split('\n').filter((l) => l.startsWith('recovery_agent_replication_lag_bytes{store="p"'));
    assert.equal(metrics.length, 1, `one lag metric, the live r1's: ${JSON.stringify(metrics)}`);
    assert.match(metrics[0]!, /replica="r1"/);
    assert.ok(Number(metrics[0]!.split(' ').at(-1)) <= live.lagBytes + 1_000_000, `the lag metric of r1 is its gone session's: ${metrics[0]}`);
  });
});
