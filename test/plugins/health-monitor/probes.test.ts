// The probes: /proc parsers on fixed text, the host probes on this machine, and the store probe
// on a real store left with WAL by a killed writer.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, realpathSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { validateConfig } from '../../../cli/config.js';
import { cpuProbe, ioProbe, memoryProbe, networkProbe, type ProcSource } from '../../../plugins/health-monitor/hostProbes.js';
import { parseCpuTimes, parseDiskStats, parseMemInfo, parseNetDev } from '../../../plugins/health-monitor/procfs.js';
import { diskProbe, mountPointOf, processProbe, storeProbe } from '../../../plugins/health-monitor/storageProbes.js';
import type { ProcessStatus } from '../../../plugins/crash-detector/types.js';
import { pageStoreEngine } from '../../../plugins/pagestore/index.js';
import { killedWriter, tmpStoreDir } from '../../helpers/store.js';

const th = validateConfig({}, '/tmp/agent.yaml', {}).health.thresholds;

const STAT = 'cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 50 0 25 400 25 0 0 0 0 0\nprocs_running 3\nprocs_blocked 1\n';
const MEMINFO = 'MemTotal:       1000 kB\nMemFree:         100 kB\nMemAvailable:    200 kB\nSwapTotal:         0 kB\nSwapFree:          0 kB\n';
const DISKSTATS = '   7       0 loop0 5 0 0 0 0 0 0 0 0 0 0 0 0\n 254       0 vda 100 0 0 300 100 0 0 700 0 500 1000 0 0 0 0\n 254       1 vda1 90 0 0 250 90 0 0 600 0 450 900 0 0 0 0\n';
const NETDEV = 'Inter-|   Receive\n face |bytes packets errs drop fifo frame compressed multicast|bytes packets errs drop fifo colls carrier compressed\n    lo: 500 5 0 0 0 0 0 0 500 5 0 0 0 0 0 0\n  eth0: 1000 100 1 2 0 0 0 0 2000 100 0 1 0 0 0 0\n';

describe('/proc parsers', () => {
  it('read CPU, memory, disk and network counters', () => {
    assert.deepEqual(parseCpuTimes(STAT), { total: 1000, idle: 850, iowait: 50, steal: 0, procsRunning: 3, procsBlocked: 1 });
    assert.deepEqual(parseMemInfo(MEMINFO), { totalBytes: 1000 * 1024, availableBytes: 200 * 1024, swapTotalBytes: 0, swapFreeBytes: 0 });
    assert.deepEqual(parseDiskStats(DISKSTATS)[1], { name: 'vda', ios: 200, ioMs: 1000, busyMs: 500 });
    assert.deepEqual(parseNetDev(NETDEV)[1], { name: 'eth0', bytes: 3000, packets: 200, errors: 1, drops: 3 });
  });

  it('finds the mount point of a path (or of its nearest existing ancestor) from mountinfo, unescaping it', () => {
    const spaced = path.join(mkdtempSync(path.join(realpathSync(os.tmpdir()), 'ra-mp-')), 'a b');
    mkdirSync(spaced);
    const mi = `22 1 254:0 / / rw - ext4 /dev/vda rw\n40 22 0:50 / ${spaced.replace(/ /g, '\\040')} rw - tmpfs tmpfs rw\n41 22 0:51 / ${spaced}c rw - tmpfs tmpfs rw\n`;
    assert.equal(mountPointOf(os.tmpdir(), mi), '/');
    assert.equal(mountPointOf(path.join(spaced, 'not', 'yet'), mi), spaced);
    assert.equal(mountPointOf(path.dirname(spaced), mi), '/');
  });
});

describe('host probes', () => {
  it('score rates over the time between samples', async () => {
    let stat = STAT;
    let disk = DISKSTATS;
    let net = NETDEV;
    const src: ProcSource = {
      read: (f) => ({ '/proc/stat': stat, '/proc/meminfo': MEMINFO, '/proc/diskstats': disk, '/proc/net/dev': net, '/proc/loadavg': '0.50 0.40 0.30 1/100 42' })[f],
      isDisk: (n) => n === 'vda',
    };
    const cpu = cpuProbe(th, src);
    const io = ioProbe(th, src);
    const network = networkProbe(th, src);
    assert.ok(Math.abs((await cpu.sample()).metrics.busy_ratio! - 0.15) < 1e-12); // since boot
    await io.sample();
    await network.sample();
    // 100 ticks later, all busy: a saturated CPU scores 50.
    stat = 'cpu  200 0 50 800 50 0 0 0 0 0\nprocs_running 2\nprocs_blocked 0\n';
    const c = await cpu.sample();
    assert.equal(c.metrics.busy_ratio, 1);
    assert.equal(c.score, 50);
    assert.equal(c.metrics.load1, 0.5);
    // 100 more requests that took 600 ms each on average: latency past its bad line.
    disk = disk.replace('vda 100 0 0 300 100 0 0 700 0 500 1000', 'vda 150 0 0 30300 150 0 0 30700 0 600 1000');
    const i = await io.sample();
    assert.equal(i.metrics['vda.await_ms'], 600);
    assert.equal(i.score, 0);
    assert.equal(i.metrics['vda1.await_ms'], undefined, 'partitions are not counted twice');
    // 5 % of 100 packets lost.
    net = net.replace('eth0: 1000 100 1 2', 'eth0: 1000 200 3 5');
    const n = await network.sample();
    assert.equal(n.metrics.error_ratio, 0.05);
    assert.equal(n.score, 0);
    const m = await memoryProbe(th, src).sample();
    assert.equal(m.metrics.available_ratio, 0.2);
    assert.equal(m.score, 80);
    assert.deepEqual(m.resources, { memory: { available: 200 * 1024, total: 1000 * 1024, unit: 'bytes' } });
  });

  it('read this machine', async () => {
    for (const p of [cpuProbe(th), memoryProbe(th), ioProbe(th), networkProbe(th), diskProbe({ mountPoint: '/', stores: [] }, th)]) {
      await p.sample();
      const s = await p.sample();
      assert.ok(s.score >= 0 && s.score <= 100, `${p.id} score ${s.score}`);
      assert.ok(Object.values(s.metrics).every(Number.isFinite), `${p.id} metrics are numbers`);
    }
    const d = await diskProbe({ mountPoint: '/', stores: ['x'] }, th).sample();
    assert.equal(d.resources!['disk:/']!.unit, 'bytes');
    assert.deepEqual(d.resources!['disk:/']!.stores, ['x']);
  });
});

describe('store and process probes', () => {
  it('report WAL since the checkpoint, its age, and corruption, with the WAL as a consumer of free space', async () => {
    const dir = tmpStoreDir();
    killedWriter({ dir, commits: 200, open: 1, pages: 16 });
    let corrupt = 0;
    const probe = storeProbe({ id: 'demo', path: dir, pageEngine: pageStoreEngine() }, th, { openCorruptPages: () => corrupt, corruptFound: () => 3 });
    const s = await probe.sample();
    assert.equal(probe.id, 'store:demo');
    assert.equal(s.metrics.present, 1);
    assert.ok(s.metrics.wal_since_checkpoint_bytes! > 10_000, `WAL since checkpoint ${s.metrics.wal_since_checkpoint_bytes}`);
    assert.equal(s.metrics.corrupt_pages_found, 3);
    assert.equal(s.score, 100);
    const wal = s.resources!['wal:demo']!;
    assert.equal(wal.consumed, s.metrics.wal_since_checkpoint_bytes);
    assert.equal(wal.subject, 'store:demo');
    assert.deepEqual(wal.stores, ['demo']);
    corrupt = 2;
    assert.equal((await probe.sample()).score, 0);
    // A store that is not there protects nothing: 0, with the reason, and the detector told.
    const told: unknown[] = [];
    const missing = await storeProbe({ id: 'new', path: path.join(dir, 'nope'), pageEngine: pageStoreEngine() }, th, { openCorruptPages: () => 0, corruptFound: () => undefined, observed: (...a) => told.push(a) }).sample();
    assert.deepEqual([missing.metrics.present, missing.score], [0, 0]);
    assert.match(missing.reason!, /nope holds no store/);
    assert.deepEqual(told, [['new', path.join(dir, 'nope'), { ok: false, missing: true, reason: missing.reason }]]);
    const opened: unknown[] = [];
    await storeProbe({ id: 'demo', path: dir, pageEngine: pageStoreEngine() }, th, { openCorruptPages: () => 0, corruptFound: () => undefined, observed: (...a) => opened.push(a) }).sample();
    assert.deepEqual(opened, [['demo', dir, { ok: true }]]);
    // One that cannot be opened (a file where the store should be): 0 too, with the engine's word.
    const file = path.join(dir, 'a-file');
    writeFileSync(file, 'not a store');
    const bad = await storeProbe({ id: 'bad', path: file, pageEngine: pageStoreEngine() }, th, { openCorruptPages: () => 0, corruptFound: () => undefined }).sample();
    assert.equal(bad.score, 0);
    assert.match(bad.reason!, /a-file/);
  });

  it('score a process by its state and memory', async () => {
    let p: Partial<ProcessStatus> = { id: 'w', state: 'running', restarts: 0, crashes: 0, cpuPercent: 12, rssBytes: 100, threads: 7 };
    const probe = processProbe('w', th, () => [p as ProcessStatus], () => 1000);
    assert.equal((await probe.sample()).score, 100);
    p = { ...p, rssBytes: 750 };
    assert.equal((await probe.sample()).score, 50);
    p = { ...p, state: 'given-up', rssBytes: null };
    assert.equal((await probe.sample()).score, 0);
    await assert.rejects(processProbe('other', th, () => [], () => 1000).sample(), /does not know process "other"/);
  });
});
