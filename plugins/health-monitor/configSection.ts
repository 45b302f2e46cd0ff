/**
 * The health monitor's config section, `health:` — probes, score, history and prediction
 * (README.md). A module of its own with no import beyond zod and the config's value types, so
 * `config check` validates it without loading the monitor.
 */
import { z } from 'zod';
import { defineConfigSection } from '../../core/config/section.js';
import { duration, size } from '../../core/config/valueTypes.js';

/** A score line: a reading at `good` or better scores 100, at `bad` or worse 0, linear between. */
const distinct = { error: 'expected good and bad to differ' };
const ratio = z.number().min(0).max(2);
const ratioLine = (good: number, bad: number) => z.strictObject({ good: ratio.default(good), bad: ratio.default(bad) }).refine((l) => l.good !== l.bad, distinct).prefault({});
const durationLine = (good: number, bad: number) => z.strictObject({ good: duration.default(good), bad: duration.default(bad) }).refine((l) => l.good !== l.bad, distinct).prefault({});
const sizeLine = (good: number, bad: number) => z.strictObject({ good: size.default(good), bad: size.default(bad) }).refine((l) => l.good !== l.bad, distinct).prefault({});
const weight = (w: number) => z.number().min(0).max(100).default(w);

/** The health monitor (plugins/health-monitor/README.md): probes, score, history, prediction. */
const HealthSchema = z
  .strictObject({
    enabled: z.boolean().default(true),
    /** How often every probe is sampled. */
    interval: duration.default(1000),
    /** How much history is kept per metric (served by GET /health/history). */
    retention: duration.default(3_600_000),
    /** Filesystems to watch besides agent.dataDir and each store's. */
    paths: z.array(z.string().min(1)).default([]),
    /**
     * How long after the agent starts a store may be missing (its writer process creates it on
     * first start) before that is a `store-missing` failure (P1).
     */
    storeGrace: duration.default(30_000),
    /** Samples a new level must hold before it counts (and a degraded or critical one is published). */
    sustain: z.number().int().min(1).max(3600).default(5),
    /** The host never scores more than its worst weighted component plus this. */
    weakestLinkMargin: z.number().min(0).max(100).default(30),
    /** Weight of each component in the score (0: shown, not counted); `probes` for third-party probe ids. */
    weights: z
      .strictObject({
        cpu: weight(1), memory: weight(2), disk: weight(3), io: weight(1), network: weight(1), store: weight(2), process: weight(1),
        probes: z.record(z.string(), z.number().min(0).max(100)).default({}),
      })
      .prefault({}),
    thresholds: z
      .strictObject({
        /** CPU busy ratio: a saturated CPU scores 50 (busy is not broken). */
        cpu: ratioLine(0.5, 1.5),
        /** MemAvailable / MemTotal. */
        memory: ratioLine(0.25, 0),
        /** Free share of a filesystem's bytes and inodes (the worse of the two). */
        disk: ratioLine(0.25, 0),
        /** Share of time a block device is busy. */
        ioUtilisation: ratioLine(0.8, 1.6),
        /** Mean time per I/O request. */
        ioLatency: durationLine(20, 500),
        /** Errors and drops per packet, over every interface but loopback. */
        network: ratioLine(0.001, 0.05),
        /** A store's WAL since its last checkpoint (what a crash would replay). */
        walBytes: sizeLine(256 * 2 ** 20, 4 * 2 ** 30),
        /** Age of a store's last checkpoint, counted only while it has more than 1 MiB of WAL since. */
        checkpointAge: durationLine(900_000, 7_200_000),
        /** A supervised process's RSS / MemTotal. */
        processRss: ratioLine(0.5, 1),
      })
      .prefault({}),
    /** Trend prediction of exhaustion (disk bytes and inodes, memory, WAL against free space). */
    prediction: z
      .strictObject({
        enabled: z.boolean().default(true),
        /** The least-squares fit spans this much history. */
        window: duration.default(300_000),
        /** A second fit over this recent span must agree (the trend still goes on). */
        recent: duration.default(30_000),
        /** Alert when exhaustion is predicted within this. */
        horizon: duration.default(300_000),
        /** ... and no more than this share of the resource is left. */
        guard: z.number().gt(0).max(1).default(0.2),
        /** ... for this many samples in a row. */
        sustain: z.number().int().min(1).max(86_400).default(60),
        /** ... with at least this probability of exhaustion within the horizon. */
        minProbability: z.number().min(0).max(1).default(0.9),
      })
      .prefault({}),
  })
  .superRefine((h, ctx) => {
    const issue = (path: string[], message: string, input: unknown) => ctx.addIssue({ code: 'custom', message, path, input });
    const p = h.prediction;
    if (h.interval < 50) issue(['interval'], 'expected an interval of 50ms or more', h.interval);
    if (h.retention < h.interval * 10) issue(['retention'], `expected a retention of at least 10 intervals (${h.interval * 10} ms)`, h.retention);
    if (p.window < h.interval * 5) issue(['prediction', 'window'], `expected a window of at least 5 intervals (${h.interval * 5} ms)`, p.window);
    if (p.window > h.retention) issue(['prediction', 'window'], `expected a window no longer than the retention (${h.retention} ms)`, p.window);
    if (p.recent < h.interval * 3 || p.recent > p.window) issue(['prediction', 'recent'], `expected a recent span from 3 intervals (${h.interval * 3} ms) to the window (${p.window} ms)`, p.recent);
    if (p.horizon <= 0) issue(['prediction', 'horizon'], 'expected a horizon greater than zero', p.horizon);
  });

/** The validated `health:` section. */
export type HealthConfig = z.output<typeof HealthSchema>;

export const healthSection = defineConfigSection({
  plugin: 'health-monitor',
  key: 'health',
  scope: 'root',
  schema: HealthSchema.prefault({}),
  resolvePaths: (h, resolve) => ({ ...h, paths: h.paths.map(resolve) }),
});

declare module '../../core/config/section.js' {
  interface PluginConfigSections {
    health: HealthConfig;
  }
}
