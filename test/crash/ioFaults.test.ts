/**
 * The crash harness's I/O fault mode (ioFaults.ts, test/fixtures/faultfs.c).
 *
 * First the fault library itself, on a probe that makes the page store's kinds of calls
 * (test/fixtures/faultfsProbe.ts): which libc functions Node really calls (pwrite64, pwritev64,
 * write, fdatasync, fsync: every one is counted, and nothing outside the faulted directory is),
 * that each kind fails exactly the chosen call, as Node then sees it, and that an io_uring,
 * which would bypass the library, is refused, also when libuv is asked to use one. The same
 * for calls made through syscall() (test/fixtures/faultfsProbe.c).
 *
 * Then the harness: writers under the library, killed after the first store error, recovered
 * without it and checked against the model: every kind must fire, short writes must really be
 * short, and no violation is allowed (no acknowledged commit lost, none acknowledged after the
 * WAL failed, no store failure without a fault, no fault swallowed). About 16 trials, 15-30 s.
 * RA_IO_FAULT_SEED=<n> reruns another seed; more trials: `npm run test:crash -- --io-faults only`.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { fixture, repoRoot } from '../helpers/paths.js';
import { formatSummary, runCrashHarness } from './harness.js';
import { IO_FAULT_KINDS, faultLibrary } from './ioFaults.js';

interface ProbeStep {
  op: string;
  ok: boolean;
  bytes?: number;
  code?: string;
}

let lib = '';
let work = '';

before(async () => {
  lib = await faultLibrary();
  work = await mkdtemp(path.join(os.tmpdir(), 'ra-faultfs-test-'));
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

let probes = 0;

/** Runs the Node probe under the library with `env`; returns its steps, trace and report. */
async function probe(env: Record<string, string>): Promise<{ steps: Map<string, ProbeStep>; trace: string[]; report: string }> {
  const n = ++probes;
  const dir = path.join(work, `in-${n}`);
  const outside = path.join(work, `out-${n}`);
  await promisify(execFile)('mkdir', ['-p', dir, outside]);
  const trace = path.join(work, `trace-${n}`);
  const report = path.join(work, `report-${n}`);
  const { stdout } = await promisify(execFile)(process.execPath, [fixture('faultfsProbe.js'), dir, outside], {
    env: { ...process.env, LD_PRELOAD: lib, FAULTFS_DIR: dir, FAULTFS_TRACE: trace, FAULTFS_REPORT: report, UV_USE_IO_URING: '0', ...env },
  });
  const steps = new Map<string, ProbeStep>();
  for (const line of stdout.trim().split('\n')) {
    const s = JSON.parse(line) as ProbeStep;
    steps.set(s.op, s);
  }
  const lines = (await readFile(trace, 'utf8').catch(() => '')).trim().split('\n').filter(Boolean);
  return { steps, trace: lines.map((l) => l.replace(` path=${dir}/`, ' ')), report: await readFile(report, 'utf8').catch(() => '') };
}

const ok = (bytes?: number): ProbeStep => ({ op: '', ok: true, ...(bytes !== undefined ? { bytes } : {}) });
function expectSteps(steps: Map<string, ProbeStep>, want: Record<string, ProbeStep>): void {
  for (const [op, w] of Object.entries(want)) assert.deepEqual(steps.get(op), { ...w, op }, `step ${op}`);
}

describe('faultfs: the LD_PRELOAD fault library', () => {
  it('counts exactly the calls libuv makes on files under FAULTFS_DIR: pwrite64, pwritev64, write, fdatasync, fsync', async () => {
    const expectedTrace = [
      'pwrite64 n=1 len=100 verdict=pass result=100 errno=0 a',
      'pwritev64 n=2 len=30 verdict=pass result=30 errno=0 a',
      'pwrite64 n=3 len=50 verdict=pass result=50 errno=0 a',
      'fdatasync n=1 len=0 verdict=pass result=0 errno=0 a',
      'fsync n=2 len=0 verdict=pass result=0 errno=0 a',
      'write n=4 len=5 verdict=pass result=5 errno=0 b',
      'fdatasync n=3 len=0 verdict=pass result=0 errno=0 b',
    ];
    const r = await probe({ FAULTFS_KIND: 'count' });
    expectSteps(r.steps, { write: ok(100), writev: ok(30), write2: ok(50), datasync: ok(), sync: ok(), writeSync: ok(5), datasync2: ok(), outside: ok() });
    assert.deepEqual(r.trace, expectedTrace, 'every call is seen once, and the file outside the directory not at all');
    assert.equal(r.report, '', 'no fault fired');
    // Asked to use an io_uring (which would bypass the library), libuv is refused one and falls
    // back to its thread pool: the same calls are seen.
    assert.deepEqual((await probe({ FAULTFS_KIND: 'count', UV_USE_IO_URING: '1' })).trace, expectedTrace, 'with UV_USE_IO_URING=1');
  });

  it('short-enospc: the chosen write takes part of its bytes, Node resolves short, later writes fail with ENOSPC', async () => {
    const r = await probe({ FAULTFS_KIND: 'short-enospc', FAULTFS_AT: '2', FAULTFS_SEED: '5' });
    const writev = r.steps.get('writev')!;
    assert.ok(writev.ok && writev.bytes! > 0 && writev.bytes! < 30, `writev resolves short: ${JSON.stringify(writev)}`);
    expectSteps(r.steps, { write: ok(100), write2: { op: '', ok: false, code: 'ENOSPC' }, datasync: ok(), sync: ok(), writeSync: { op: '', ok: false, code: 'ENOSPC' }, outside: ok() });
    assert.match(r.report, new RegExp(`^fired kind=short-enospc at=2 fn=pwritev64 len=30 result=${writev.bytes} errno=0 sticky=1 t=\\d+ path=.*/a\\n$`));
    // libuv continued the short write itself (call 3, failed) and handed Node the short count.
    assert.match(r.trace[2]!, /^pwritev64 n=3 len=\d+ verdict=fail result=-1 errno=28 a$/);
  });

  it('enospc: the chosen write fails and takes nothing, and every later write fails too', async () => {
    const r = await probe({ FAULTFS_KIND: 'enospc', FAULTFS_AT: '1' });
    const enospc = { op: '', ok: false, code: 'ENOSPC' };
    expectSteps(r.steps, { write: enospc, writev: enospc, write2: enospc, datasync: ok(), writeSync: enospc, outside: ok() });
    const probeDir = path.dirname(/path=(.*)\n/.exec(r.report)![1]!);
    assert.equal((await stat(path.join(probeDir, 'a'))).size, 0, 'nothing was written');
  });

  it('eio-write, once: only the chosen write fails with EIO', async () => {
    const r = await probe({ FAULTFS_KIND: 'eio-write', FAULTFS_AT: '3', FAULTFS_STICKY: '0' });
    expectSteps(r.steps, { write: ok(100), writev: ok(30), write2: { op: '', ok: false, code: 'EIO' }, writeSync: ok(5), datasync: ok() });
  });

  it('eio-sync, once and sticky: the chosen fdatasync fails with EIO, later syncs succeed or fail as asked', async () => {
    const once = await probe({ FAULTFS_KIND: 'eio-sync', FAULTFS_AT: '1', FAULTFS_STICKY: '0' });
    expectSteps(once.steps, { write: ok(100), datasync: { op: '', ok: false, code: 'EIO' }, sync: ok(), datasync2: ok() });
    assert.match(once.report, /^fired kind=eio-sync at=1 fn=fdatasync len=0 result=-1 errno=5 sticky=0 /);
    const sticky = await probe({ FAULTFS_KIND: 'eio-sync', FAULTFS_AT: '2', FAULTFS_STICKY: '1' });
    const eio = { op: '', ok: false, code: 'EIO' };
    expectSteps(sticky.steps, { datasync: ok(), sync: eio, datasync2: eio, writeSync: ok(5) });
  });

  it('FAULTFS_ARM: nothing fails (or is counted) while the arm file is missing; once it exists the fault fires at the first call', async () => {
    const arm = path.join(work, 'arm');
    const disarmed = await probe({ FAULTFS_KIND: 'eio-write', FAULTFS_ARM: arm });
    expectSteps(disarmed.steps, { write: ok(100), writev: ok(30), write2: ok(50), datasync: ok(), writeSync: ok(5) });
    assert.equal(disarmed.report, '', 'no fault fired');
    assert.ok(disarmed.trace.every((l) => / n=0 /.test(l)), `no call counted while disarmed: ${disarmed.trace.join('; ')}`);
    await writeFile(arm, '');
    try {
      const armed = await probe({ FAULTFS_KIND: 'eio-write', FAULTFS_ARM: arm });
      const eio = { op: '', ok: false, code: 'EIO' };
      expectSteps(armed.steps, { write: eio, writev: eio, write2: eio, datasync: ok(), writeSync: eio, outside: ok() });
      assert.match(armed.report, /^fired kind=eio-write at=1 fn=pwrite64 /);
    } finally {
      await rm(arm, { force: true });
    }
  });

  it('delay: every matching write and sync sleeps FAULTFS_DELAY_MS while armed, and fails nothing', async () => {
    const arm = path.join(work, 'arm-delay');
    const timed = async () => {
      const t0 = performance.now();
      const r = await probe({ FAULTFS_KIND: 'delay', FAULTFS_DELAY_MS: '300', FAULTFS_ARM: arm });
      return { r, ms: performance.now() - t0 };
    };
    const fast = await timed();
    await writeFile(arm, '');
    let slow;
    try {
      slow = await timed();
    } finally {
      await rm(arm, { force: true });
    }
    for (const { r } of [fast, slow]) expectSteps(r.steps, { write: ok(100), writev: ok(30), write2: ok(50), datasync: ok(), sync: ok(), writeSync: ok(5), datasync2: ok(), outside: ok() });
    // Seven matching calls (the outside write is not one): 7 × 300 ms more when armed; one
    // delay's worth of slack for the noise of starting two Node processes on a busy machine.
    assert.ok(slow.ms - fast.ms >= 6 * 300, `armed ${Math.round(slow.ms)} ms, disarmed ${Math.round(fast.ms)} ms`);
    assert.equal(slow.r.report, '', 'a delay is not a fault that fires');
  });

  it('sees the same calls made through syscall(), and refuses io_uring_setup', async () => {
    const exe = path.join(work, 'faultfsProbe');
    await promisify(execFile)(process.env.CC ?? 'cc', ['-O2', '-o', exe, path.join(repoRoot(), 'test', 'fixtures', 'faultfsProbe.c')]);
    const dir = path.join(work, 'syscall');
    await promisify(execFile)('mkdir', ['-p', dir]);
    const run = async (env: Record<string, string>) => {
      const { stdout } = await promisify(execFile)(exe, [path.join(dir, 'f')], { env: { ...process.env, LD_PRELOAD: lib, FAULTFS_DIR: dir, ...env } });
      return Object.fromEntries(stdout.trim().split('\n').map((l) => [l.split(' ')[0]!, l.slice(l.indexOf(' ') + 1)]));
    };
    assert.deepEqual(await run({ FAULTFS_KIND: 'eio-write', FAULTFS_AT: '2', FAULTFS_STICKY: '0' }), {
      write: '8 0',
      pwrite64: '-1 5', // the second write, made as syscall(SYS_pwrite64, …), failed with EIO
      pwritev: '32 0',
      fdatasync: '0 0',
      fsync: '0 0',
      io_uring_setup: '-1 38', // ENOSYS
    });
    assert.equal((await run({ FAULTFS_KIND: 'eio-sync', FAULTFS_AT: '2', FAULTFS_STICKY: '0' })).fsync, '-1 5');
  });

  it('is inert without FAULTFS_DIR', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [fixture('faultfsProbe.js'), work, work], { env: { ...process.env, LD_PRELOAD: lib, FAULTFS_DIR: '', FAULTFS_KIND: 'enospc', FAULTFS_AT: '1' } });
    assert.ok(stdout.trim().split('\n').every((l) => (JSON.parse(l) as ProbeStep).ok), stdout);
  });
});

describe('crash harness: ENOSPC and EIO at random points of the WAL and checkpoint writes', () => {
  it('about 16 I/O fault trials (each kind at least twice) with zero violations', { timeout: 180_000 }, async (t) => {
    const seed = Number(process.env.RA_IO_FAULT_SEED ?? 20251206);
    const summary = await runCrashHarness({ seed, ioFaults: 'only', iterations: 16, timeLimitMs: 45_000, log: (line) => t.diagnostic(line), progressEvery: 4 });
    for (const line of formatSummary(summary).split('\n')) t.diagnostic(line);
    assert.deepEqual(summary.violations, [], `violations (seed ${seed}; store kept at ${summary.dir})`);
    for (const k of IO_FAULT_KINDS) assert.ok(summary.ioFaultsFired[k] >= 2, `${k} fired ${summary.ioFaultsFired[k]} of ${summary.ioFaultsTried[k]} times (seed ${seed})`);
    assert.ok(summary.ioShortWrites >= 1, 'a short write took part of its bytes');
    assert.ok(summary.ioStoreErrors > 0, 'store operations failed');
    assert.ok(summary.commitsAcked > 0, 'commits were acknowledged around the faults');
    assert.equal(summary.ioFaultKills, summary.iterations, 'every writer was killed by the harness after its trial');
  });
});
