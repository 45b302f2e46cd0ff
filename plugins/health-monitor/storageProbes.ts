/**
 * Probes of what the agent protects: the filesystems of agent.dataDir, of each store and of
 * `health.paths` (space and inodes, by fs.statfs), each store (WAL since the last checkpoint,
 * checkpoint age, corrupt pages not yet repaired), and each configured process (state, RSS,
 * CPU, from the CrashDetector's supervisor).
 */
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import path from 'node:path';
import type { HealthProbe, HealthResource, HealthSample } from '../../core/contracts/HealthProbe.js';
import type { PageEngine } from '../../core/contracts/PageEngine.js';
import type { ProcessStatus } from '../../core/contracts/ProcessSupervisor.js';
import { describeError, isRaError } from '../../core/errors.js';
import type { HealthConfig } from './hostProbes.js';
import type { LeakFacts } from './monitor.js';
import { memoryLimitOf } from './processMemory.js';
import { lineScore } from './score.js';
import type { StoreCondition } from './storePresence.js';

type Thresholds = HealthConfig['thresholds'];

/** A watched filesystem: its mount point and the stores on it. */
export interface WatchedFs {
  readonly mountPoint: string;
  readonly stores: readonly string[];
}

/** The mount point holding `p` (or its nearest existing ancestor), from /proc/self/mountinfo. */
export function mountPointOf(p: string, mountinfo = readFileSync('/proc/self/mountinfo', 'utf8')): string {
  let dir = path.resolve(p);
  while (!existsSync(dir) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  const real = realpathSync(dir);
  // Field 5 is the mount point, with space, tab, newline and backslash escaped as octal.
  const points = mountinfo.split('\n').map((l) => l.split(' ')[4]).filter((m): m is string => !!m).map((m) => m.replace(/\\([0-7]{3})/g, (_s, o: string) => String.fromCharCode(parseInt(o, 8))));
  let best = '/';
  for (const m of points) if ((real === m || real.startsWith(m.endsWith('/') ? m : `${m}/`)) && m.length > best.length) best = m;
  return best;
}

/** The distinct filesystems of the given paths, each with the ids of the stores on it. */
export function watchedFilesystems(paths: readonly string[], stores: ReadonlyArray<{ id: string; path: string }>): WatchedFs[] {
  const byMount = new Map<string, Set<string>>();
  for (const p of paths) if (!byMount.has(mountPointOf(p))) byMount.set(mountPointOf(p), new Set());
  for (const s of stores) {
    const m = mountPointOf(s.path);
    byMount.set(m, (byMount.get(m) ?? new Set()).add(s.id));
  }
  return [...byMount].map(([mountPoint, ids]) => ({ mountPoint, stores: [...ids] }));
}

export function diskProbe(fs: WatchedFs, th: Thresholds): HealthProbe {
  const id = `disk:${fs.mountPoint}`;
  return {
    id,
    async sample(): Promise<HealthSample> {
      const s = await statfs(fs.mountPoint);
      const total = s.blocks * s.bsize;
      const free = s.bavail * s.bsize;
      const freeRatio = s.blocks > 0 ? s.bavail / s.blocks : 1;
      const inodeRatio = s.files > 0 ? s.ffree / s.files : 1;
      const resources: Record<string, HealthResource> = { [id]: { available: free, total, unit: 'bytes', stores: fs.stores } };
      // Some filesystems (btrfs, overlays of them) report no inode limit: nothing to run out of.
      if (s.files > 0) resources[`inodes:${fs.mountPoint}`] = { available: s.ffree, total: s.files, unit: 'inodes', stores: fs.stores };
      return {
        metrics: { free_bytes: free, total_bytes: total, free_ratio: freeRatio, inodes_free: s.ffree, inodes_total: s.files, inodes_free_ratio: inodeRatio },
        score: Math.min(lineScore(freeRatio, th.disk), lineScore(inodeRatio, th.disk)),
        resources,
      };
    },
  };
}

/** What the store probe asks of the rest of the agent (looked up when sampled). */
export interface StoreLookups {
  /** Pages of open (queued, running or escalated) page-corruption failures of the store. */
  openCorruptPages(storeId: string): number;
  /** Corrupt pages the scrub has found in the store since the agent started, if it runs. */
  corruptFound(storeId: string): number | undefined;
  /** Told at every sample whether the store opened (the store-missing detector, storePresence.ts). */
  observed?(storeId: string, path: string, condition: StoreCondition): void;
}

const WAL_FOR_AGE = 2 ** 20;

/** The probe of one store, whose log usage its engine reads (`pageEngine.logUsage`). */
export function storeProbe(store: { id: string; path: string; pageEngine: Pick<PageEngine, 'logUsage'> }, th: Thresholds, lookups: StoreLookups): HealthProbe {
  return {
    id: `store:${store.id}`,
    async sample(): Promise<HealthSample> {
      const corrupt = lookups.openCorruptPages(store.id);
      const found = lookups.corruptFound(store.id);
      const base: Record<string, number> = { corrupt_pages_open: corrupt, ...(found !== undefined ? { corrupt_pages_found: found } : {}) };
      const corruptScore = corrupt > 0 ? 0 : 100;
      let usage;
      try {
        usage = await store.pageEngine.logUsage(store.path);
      } catch (err) {
        // Missing (perhaps not created yet: its writer makes it) or unopenable: nothing is
        // protected, which is never healthy. The detector decides when that is a failure.
        const missing = isRaError(err, 'RA_ERR_STORE_NOT_FOUND');
        const reason = missing ? `${store.path} holds no store (not created yet, or the path is wrong)` : `${store.path} cannot be opened: ${describeError(err)}`;
        lookups.observed?.(store.id, store.path, { ok: false, missing, reason });
        return { metrics: { ...base, present: 0 }, score: 0, reason };
      }
      lookups.observed?.(store.id, store.path, { ok: true });
      const fs = await statfs(store.path);
      const ageMs = Math.max(0, Date.now() - usage.checkpointAt);
      const wal = usage.sinceCheckpointBytes;
      const score = Math.min(corruptScore, lineScore(wal, th.walBytes), wal > WAL_FOR_AGE ? lineScore(ageMs, th.checkpointAge) : 100);
      return {
        metrics: { ...base, present: 1, wal_since_checkpoint_bytes: wal, wal_segments: usage.segments, checkpoint_age_seconds: ageMs / 1000 },
        score,
        resources: {
          [`wal:${store.id}`]: { available: fs.bavail * fs.bsize, total: fs.blocks * fs.bsize, unit: 'bytes', consumed: wal, subject: `store:${store.id}`, stores: [store.id] },
        },
      };
    },
  };
}

/** Scores of process states: a process that should run and does not is a degraded host; one given up on is critical. */
const STATE_SCORE: Record<ProcessStatus['state'], number> = { running: 100, stopped: 100, exited: 30, hung: 30, 'given-up': 0 };

/**
 * A configured process: its state and resources, and — while it runs — its RSS as a resource
 * (`rss:<id>`, against its memory limit: processMemory.ts) whose predicted exhaustion is a
 * `memory-leak`. The resource carries the pid as its instance: a restarted process is fitted afresh.
 */
export function processProbe(id: string, th: Thresholds, list: () => readonly ProcessStatus[], memTotalBytes: () => number, memoryLimit?: number): HealthProbe {
  return {
    id: `process:${id}`,
    async sample(): Promise<HealthSample> {
      const p = list().find((x) => x.id === id);
      if (!p) throw new Error(`the supervisor does not know process "${id}"`);
      const metrics: Record<string, number> = { running: p.state === 'running' ? 1 : 0, restarts: p.restarts, crashes: p.crashes };
      if (p.cpuPercent !== null) metrics.cpu_percent = p.cpuPercent;
      if (p.threads !== null) metrics.threads = p.threads;
      let score = STATE_SCORE[p.state] ?? 50;
      if (p.rssBytes !== null) {
        metrics.rss_bytes = p.rssBytes;
        const total = memTotalBytes();
        if (total > 0) score = Math.min(score, lineScore(p.rssBytes / total, th.processRss));
      }
      if (p.state !== 'running' || p.pid === null || p.rssBytes === null) return { metrics, score };
      const limit = await memoryLimitOf(p.pid, memoryLimit, memTotalBytes());
      metrics.memory_limit_bytes = limit.bytes;
      const leak: LeakFacts = { processId: id, pid: p.pid, rssBytes: p.rssBytes, limitBytes: limit.bytes, limitSource: limit.source, ...(p.store ? { store: p.store } : {}) };
      const rss: HealthResource & { instance: number; leak: LeakFacts } = {
        available: Math.max(0, limit.bytes - p.rssBytes), total: limit.bytes, unit: 'bytes', subject: `process:${id}`, stores: p.store ? [p.store] : [], instance: p.pid, leak,
      };
      return { metrics, score, resources: { [`rss:${id}`]: rss } };
    },
  };
}
