// The short chaos run of CI (issue #17): one trial of every single-host fault kind with a fixed
// seed, each against a real agent process supervising a real writer (test/chaos/harness.ts; the
// long run is `npm run chaos -- --trials N`). Asserted for every kind: no acknowledged commit
// lost, nothing uncommitted visible, every page verifying, the agent never crashing; for every
// kind the agent has a detector for: detected, recovered, the RTO it records agreeing with the
// harness's monotonic clock. Trials run three at a time (14 of them: about 90–120 s on two quiet CPUs; the file runs alone in the serial phase).
// Held faults (slow-io) also: the commit rate back to normal after the heal, with no false recovery.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { allKinds, FAMILIES, KNOWN_GAPS, PROC_FAMILIES } from './faults/index.js';
import { assertInvariants, runTrial, type TrialResult } from './harness.js';

const SEED = 17;

// KNOWN_GAPS (faults/index.ts): kinds the agent has no detector for yet; their trials must fail as
// "not detected" — honestly, with the history still intact. A detector for one moves it out of
// that list (this test then says so).

/**
 * Kinds left out of the short run, with why (they run in `npm run chaos`).
 * app-hung-work: detected (process-hang, no-work) and recovered in every replay, nothing lost,
 * but the harness's check of the agent's RTO flips with the load: in the failed trials the harness
 * first saw the failure 0.4–0.6 s after the agent published it, so the agent's RTO looked longer
 * than the harness's span (beyond its 250 ms + 5 %). Likely cause, not proven: restart-process
 * kills the hung writer and spawns the next one at once, and a spawn under load (fork, then
 * waiting for the child's exec) holds the agent's loop while the harness's poll waits
 * (app-sigstop, the other hang, failed the same way once). Alone: 28 of 30 replays passed (seeds
 * 17 and 5, load 10–30); side by side with the other application kinds in chaosProc.test.ts: 3 of
 * 5 (`npm run chaos -- --seed 17 --trial 3 --kinds app-hung-work`).
 * disk-full, io-error-write and io-error-fsync were out: a recovery that ran while the disk fault
 * held was escalated and nothing retried once the disk worked again. It is retried now
 * (plugins/self-healer/retry.ts); 10 replays of each with seed 17 passed
 * (`npm run chaos -- --seed 17 --kinds disk-full --trials 10`).
 * page-bitflip and page-torn were out for two repair bugs that showed by timing: a live WAL
 * segment the owner filled while the repair read it taken for a partial copy, and a torn
 * header's garbage LSN making every rebuilt image look stale. The repair now reads the WAL up to
 * the owner's durable LSN taken first, and the owner does not hold a torn header's LSN against
 * an image as of that LSN (PageStore.repairPage): test/plugins/snapshot-manager/rebuildDurable.test.ts,
 * test/plugins/pagestore/controlRepair.test.ts. page-torn was then out once more: a CI-style run
 * lost an acknowledged commit written to the page just after its repair (seed 17 trial 10). The
 * cause was the page cache (PageCache.install trimmed the cache before a transaction waiting on
 * the install had pinned the new frame, and handed it a frame the cache no longer held, which no
 * checkpoint wrote), now fixed and tested (controlRepair.test.ts, "waited for the page"). With
 * both: page-torn seed 9 20/20 and seed 17 10/10 passed, page-bitflip seed 9 10/10, nothing lost
 * (the long run had failed 23 of 50 page-torn trials by escalation). Replays: `--seed 17 --trial
 * 6 --kinds page-bitflip`, `--seed 17 --trial 10 --kinds page-torn`.
 */
// page-torn: 50 of 50 passed in the long run (seed 9) after the page-cache fix, but in CI,
// three trials at a time, its fault once landed on a page the owner loaded and rewrote before
// any scrub came by ("not detected ... page verifies again (rewritten by its owner)") and once
// missed the RTO agreement by 2 ms: out of CI until the fault makes sure the page stays cold.
// wal-truncated and wal-archived-bitflip are back: their misses were faults landing before the
// first snapshot, on a segment pruned from the archive before any pass read it (needed by
// nothing there); WAL and archive damage now wait for a snapshot (bitFlips.ts).
const LONG_RUN_ONLY = new Set<string>(['app-hung-work', 'page-torn']);

async function pool<T, R>(items: readonly T[], width: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  }));
  return out;
}

// The guard: 14 trials in 5 rounds of 3 (the three disk kinds, back in, added 12–18 % of the trials' time).
describe('chaos: one trial of every single-host fault kind', { timeout: 240_000 }, () => {
  it('keeps every acknowledged commit and recovers every fault it can detect', async () => {
    const probes = new Map<string, string | null>();
    for (const f of FAMILIES) probes.set(f.name, await f.probe());
    for (const [family, why] of probes) assert.equal(why, null, `fault family ${family} cannot be injected on this machine: ${why}`);

    // The clock, memory-leak and deadlock families have their own short run (chaosProc.test.ts),
    // and the kinds whose answer is an escalation or timing run only in `npm run chaos` (none now).
    const kinds = allKinds().filter(({ family, kind }) => !PROC_FAMILIES.has(family.name) && !LONG_RUN_ONLY.has(kind.name));
    const t0 = Date.now();
    const results: TrialResult[] = await pool(kinds, 3, ({ family, kind }, trial) =>
      runTrial({ seed: SEED, trial, family, kind, unsupported: null, recoveryTimeoutMs: KNOWN_GAPS.has(kind.name) ? 4000 : 25_000 }),
    );
    const wall = Date.now() - t0;
    for (const r of results) {
      const rto = r.harnessRtoMs === null ? '' : ` RTO ${r.harnessRtoMs} ms (agent ${r.agentRtoMs ?? '-'} ms)`;
      console.log(`# ${r.kind}: ${r.status}${rto}, ${r.acked} acked, ${r.ackedLost} lost, ${r.wallMs} ms; ${r.problems.join(' | ')}`);
    }
    console.log(`# ${results.length} trials in ${wall} ms`);

    for (const r of results) {
      const why = assertInvariants(r);
      assert.ok(r.pagesVerified, why);
      if (KNOWN_GAPS.has(r.kind)) {
        assert.equal(r.status, 'failed', `${r.kind} passed: the agent detects it now; take it out of KNOWN_GAPS`);
        assert.match(r.problems[0] ?? '', /^not detected/, why);
      } else {
        assert.equal(r.status, 'passed', why);
        assert.equal(r.outcome, 'recovered', why);
        assert.notEqual(r.rtoAgrees, false, why);
        assert.ok(r.harnessRtoMs !== null && r.harnessRtoMs <= r.targetMs, why);
      }
    }
  });
});
