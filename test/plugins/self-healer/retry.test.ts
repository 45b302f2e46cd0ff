import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { Failure } from '../../../core/contracts/Failure.js';
import type { Healer, HealResult } from '../../../core/contracts/Healer.js';
import { diskProblem } from '../../../plugins/self-healer/diskCheck.js';
import { backoffMs, planRetry, withRetries, type RetryDeps } from '../../../plugins/self-healer/retry.js';

const policy = { attempts: 4, initial: 1000, max: 30_000, minFree: 8 << 20, checkEvery: 10 };

function failure(over: Partial<Failure> = {}): Failure {
  return { id: 'f-1', kind: 'process-crash', priority: 'P1', subject: 'process:app', evidence: { store: 's', exitCode: 2 }, detectedAt: Date.now(), source: 't', fingerprint: 'fp', ...over };
}

const failed = (error: string, applied = false, action = 'recover-store'): HealResult => ({
  outcome: 'failed',
  attempts: [{ action, applied, verified: false, undone: false, durationMs: 5, ...(error ? { error } : {}) }],
  reason: `step 1 (${action}) had no action that verified`,
});

/** A disk check the test controls: `full` makes every store's disk unusable. */
function fakeDisk() {
  const disk = { full: true, checks: [] as string[] };
  const deps: RetryDeps = {
    policy,
    storePaths: new Map([['s', '/stores/s'], ['t', '/stores/t']]),
    processStores: new Map([['app', 's']]),
    diskProblem: async (dir) => {
      disk.checks.push(dir);
      return disk.full ? `free space on the filesystem of ${dir} (0 B free, under 8.0 MiB)` : null;
    },
  };
  return { disk, deps };
}

describe('self-healer retries', () => {
  it('backs off from 1 s doubling to 30 s', () => {
    assert.deepEqual([2, 3, 4, 5, 6, 7, 8, 12].map((n) => backoffMs(policy, n)), [1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000]);
  });

  it('plans a retry woken when the store\'s disk is back, and not before', async () => {
    const { disk, deps } = fakeDisk();
    const plan = await planRetry(failure({ evidence: {} }), failed('ENOSPC: no space left on device, write'), 2, { ...deps, policy: { ...policy, initial: 60_000, max: 60_000 } });
    assert.ok(plan);
    assert.equal(plan.nextAttempt, 2);
    assert.equal(plan.maxAttempts, 4);
    assert.deepEqual(disk.checks, ['/stores/s'], 'the store of the failure\'s process');
    assert.match(plan.waitingFor, /^free space on the filesystem of \/stores\/s .* is back, at the latest in 60 s$/);
    const t0 = Date.now();
    const woke = plan.wait(new AbortController().signal);
    let done = false;
    void woke.then(() => (done = true));
    await new Promise((r) => setTimeout(r, 80));
    assert.equal(done, false, 'still full: still waiting');
    disk.full = false;
    assert.equal(await woke, 'condition');
    assert.ok(Date.now() - t0 < 2000);
  });

  it('without a blocked disk: a transient error or a restart that did not hold waits out the backoff; other failures get no plan', async () => {
    const { disk, deps } = fakeDisk();
    disk.full = false;
    const quick = { ...deps, policy: { ...policy, initial: 60 } };
    const eio = await planRetry(failure(), failed('EIO: i/o error, fsync'), 2, quick);
    assert.ok(eio);
    assert.match(eio.waitingFor, /60 ms passed \(the cause may pass: EIO/);
    const t0 = Date.now();
    assert.equal(await eio.wait(new AbortController().signal), 'backoff', 'the disk never looked blocked: the condition cannot wake it');
    assert.ok(Date.now() - t0 >= 50);

    const restart = await planRetry(failure(), failed('verify said the failure is not fixed', true, 'restart-process'), 3, quick);
    assert.match(restart?.waitingFor ?? '', /120 ms passed \(the restarted process did not stay up\)/);

    assert.equal(await planRetry(failure({ subject: 'store:t', kind: 'page-corruption', evidence: {} }), failed('RA_ERR_REPAIR_REFUSED: every rebuilt image is older'), 2, quick), null);
    // A repair's snapshot refused over a page being repaired next: retried after the backoff.
    const overPage = await planRetry(failure({ subject: 'store:t', kind: 'archive-corruption', evidence: {} }), failed('page 7 (and 0 more in pages 0..64) fails verification on every read; refusing to snapshot corrupt pages (repair them first) [RA_ERR_PAGE_CORRUPT]'), 2, quick);
    assert.ok(overPage, 'a snapshot refused over a corrupt page is retried');
    assert.match(overPage.waitingFor, /refusing to snapshot corrupt pages/);
    assert.equal(await planRetry(failure(), failed('RA_ERR_STORE_NOT_FOUND: store "s" does not exist'), 2, quick), null);

    // Aborted while waiting: rejects, promptly.
    const ctrl = new AbortController();
    const slow = await planRetry(failure(), failed('ETIMEDOUT'), 2, { ...deps, policy: { ...policy, initial: 60_000 } });
    const w = slow!.wait(ctrl.signal);
    ctrl.abort(new Error('stopping'));
    await assert.rejects(w, /stopping/);
  });

  it('wraps the healer: a plan on failed results until the cap, none on others', async () => {
    const { deps } = fakeDisk();
    let result: HealResult = failed('ENOSPC');
    const inner: Healer = { id: 'inner', heal: async () => result };
    const healer = withRetries(inner, deps);
    const signal = new AbortController().signal;
    assert.equal((await healer.heal(failure(), signal, { attempt: 1 })).retry?.nextAttempt, 2);
    assert.equal((await healer.heal(failure(), signal, { attempt: 3 })).retry?.nextAttempt, 4);
    const last = await healer.heal(failure(), signal, { attempt: 4 });
    assert.equal(last.retry, undefined);
    assert.match(last.reason ?? '', /no retry left \(4 of 4 attempts made\)/);
    result = { outcome: 'no-action', attempts: [], reason: 'no healing rule' };
    assert.equal((await healer.heal(failure(), signal)).retry, undefined);
    result = { outcome: 'recovered', attempts: [] };
    assert.equal((await healer.heal(failure(), signal)).retry, undefined);
  });

  it('checks a real disk: statfs free space against minFree, and a write+fsync probe that leaves nothing behind', async () => {
    const dir = path.join(mkdtempSync(path.join(os.tmpdir(), 'ra-diskcheck-')), 'store');
    mkdirSync(dir);
    assert.equal(await diskProblem(dir, 0), null);
    assert.deepEqual(readdirSync(dir), [], 'the probe file is removed');
    assert.match((await diskProblem(dir, Number.MAX_SAFE_INTEGER)) ?? '', /^free space on the filesystem of .* free, under /);
    const missing = path.join(path.dirname(dir), 'not-yet');
    assert.equal(await diskProblem(missing, 0), null, 'a store not created yet: its parent is probed');
    assert.equal(existsSync(missing), false);
    const unwritable = path.join(path.dirname(dir), 'gone', 'deeper', 'store');
    assert.match((await diskProblem(unwritable, 0)) ?? '', /answering (statfs|a write and fsync)/);
  });
});
