/**
 * The config schema: one YAML file, validated here, with defaults. Durations become
 * milliseconds, sizes bytes, rates bytes per second. `recovery-agent config schema` prints the
 * JSON Schema of the input form for editors.
 *
 * Sections are added as the components that read them land; unknown keys are errors, so a typo
 * never silently disables something.
 */
import os from 'node:os';
import { z } from 'zod';
import { exposureProblem } from '../http/exposure.js';
import { parseDuration, parseRate, parseSize } from './units.js';

const DURATION_HINT = 'a duration such as 100ms, 5s, 2m or 1h';
const SIZE_HINT = 'a size such as 4096, 8KiB or 50MiB';
const RATE_HINT = 'a rate such as 50MiB/s';

/** A duration: `5s`, `2m`, or milliseconds as a number. Parsed to milliseconds. */
export const duration = z
  .union([z.string(), z.number()], { error: `expected ${DURATION_HINT}` })
  .transform((v, ctx) => {
    const parsed = parseDuration(v);
    if (parsed === undefined) ctx.addIssue({ code: 'custom', message: `expected ${DURATION_HINT}`, input: v });
    return parsed ?? 0;
  })
  .meta({ description: DURATION_HINT });

/** A size: `8KiB`, `50MiB`, or bytes as a number. Parsed to bytes. */
export const size = z
  .union([z.string(), z.number()], { error: `expected ${SIZE_HINT}` })
  .transform((v, ctx) => {
    const parsed = parseSize(v);
    if (parsed === undefined) ctx.addIssue({ code: 'custom', message: `expected ${SIZE_HINT}`, input: v });
    return parsed ?? 0;
  })
  .meta({ description: SIZE_HINT });

/** A rate: `50MiB/s`, or bytes per second as a number. Parsed to bytes per second. */
export const rate = z
  .union([z.string(), z.number()], { error: `expected ${RATE_HINT}` })
  .transform((v, ctx) => {
    const parsed = parseRate(v);
    if (parsed === undefined || parsed === 0) ctx.addIssue({ code: 'custom', message: `expected ${RATE_HINT} (greater than zero)`, input: v });
    return parsed ?? 0;
  })
  .meta({ description: RATE_HINT });

const id = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, { error: 'expected an id of lowercase letters, digits, ".", "_" or "-" (at most 63)' });

const listen = z.string().regex(/^(\[[0-9a-f:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, { error: 'expected host:port, e.g. 127.0.0.1:9464' });

const AgentSection = z.strictObject({
  /** Directory for the agent's own state (journal, scrub progress, learning). */
  dataDir: z.string().min(1).default('./var/agent'),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  http: z
    .strictObject({
      /** Serve the HTTP API (health, status, metrics). */
      enabled: z.boolean().default(true),
      listen: listen.default('127.0.0.1:9464'),
      /** Bearer token: needed by mutating calls and, once set, by every endpoint but /health and /metrics. */
      token: z.string().min(16, { error: 'expected a token of at least 16 characters' }).optional(),
      /** Listen on a non-loopback address without a token (refused otherwise). */
      allowUnauthenticatedRemote: z.boolean().default(false),
    })
    .superRefine((http, ctx) => {
      const problem = exposureProblem(http);
      if (problem) ctx.addIssue({ code: 'custom', message: problem, path: ['listen'], input: http.listen });
    })
    .prefault({}),
  workers: z.number().int().min(1).max(256).default(() => os.availableParallelism()),
  maxConcurrentRecoveries: z.number().int().min(1).max(1024).default(3),
  rto: z
    .strictObject({ P0: duration.default(30_000), P1: duration.default(120_000), P2: duration.default(300_000), P3: duration.default(3_600_000) })
    .prefault({}),
  /** How long a plugin may take to register and start before it is marked failed. */
  pluginStartTimeout: duration.default(10_000),
  pluginStopTimeout: duration.default(10_000),
  /**
   * Limits of each third-party plugin's child process. The first three become its V8 flags
   * (`--max-old-space-size`, `--max-semi-space-size`, `--stack-size`; past the heap limit V8
   * aborts the plugin's process); Buffers and ArrayBuffers live outside V8's heap, so the
   * plugin's process checks them against `maxExternalMemoryMb`.
   */
  pluginResourceLimits: z
    .strictObject({
      maxOldGenerationSizeMb: z.number().int().min(16).max(65_536).default(256),
      maxYoungGenerationSizeMb: z.number().int().min(1).max(1024).optional(),
      stackSizeMb: z.number().int().min(1).max(64).default(4),
      maxExternalMemoryMb: z.number().int().min(16).max(65_536).default(256),
    })
    .prefault({}),
  /** How long a call into a third-party plugin (canHandle, apply, verify, undo, sample) may take. */
  pluginCallTimeout: duration.default(30_000),
});

const StoreSection = z.strictObject({
  id,
  engine: z.string().min(1).default('pagestore'),
  path: z.string().min(1),
  scrub: z.strictObject({ rate: rate.default(50 * 2 ** 20), interval: duration.default(86_400_000) }).prefault({}),
  /** Where the store's snapshots and WAL archive live (plugins/snapshot-manager); the agent's recoveries archive retired WAL there. */
  snapshots: z
    .strictObject({
      dir: z.string().min(1),
      /** Take a snapshot on this interval inside the agent; without it, only the CLI takes them. */
      every: duration.optional(),
      /** Every Nth scheduled snapshot is full, the others incremental. */
      fullEvery: z.number().int().min(1).default(12),
      keep: z.strictObject({ full: z.number().int().min(0).default(2), incremental: z.number().int().min(0).default(12) }).prefault({}),
      maxAge: duration.optional(),
    })
    .optional(),
});

/**
 * How the agent knows a process is alive besides its pid: UDP datagrams carrying its token, or
 * probes the agent makes (HTTP GET, TCP connect) every `interval`. Nothing within `timeout` is a hang.
 */
const HeartbeatSection = z
  .strictObject({
    /** Address the agent listens on for the process's datagrams (port 0: any free port). */
    udp: listen.optional(),
    /** URL the agent GETs every `interval`; a 2xx answer counts as a heartbeat. */
    http: z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' }).optional(),
    /** host:port the agent connects to every `interval`; an accepted connection counts as a heartbeat. */
    tcp: listen.optional(),
    interval: duration.default(1000),
    timeout: duration.default(5000),
    /** The token datagrams must carry; generated per start when omitted (required for an attached process). */
    token: z.string().regex(/^[\x21-\x7e]{8,256}$/, { error: 'expected 8 to 256 printable ASCII characters without spaces' }).optional(),
  })
  .superRefine((hb, ctx) => {
    if (hb.udp === undefined && hb.http === undefined && hb.tcp === undefined) {
      ctx.addIssue({ code: 'custom', message: 'expected at least one of udp, http or tcp', path: [], input: undefined });
    }
    if (hb.timeout <= 0) ctx.addIssue({ code: 'custom', message: 'expected a timeout greater than zero', path: ['timeout'], input: hb.timeout });
    if ((hb.http !== undefined || hb.tcp !== undefined) && (hb.interval < 10 || hb.timeout <= hb.interval)) {
      ctx.addIssue({ code: 'custom', message: `expected probes every 10ms or more, and a timeout longer than the interval (interval ${hb.interval} ms, timeout ${hb.timeout} ms)`, path: ['interval'], input: undefined });
    }
  });

const RestartSection = z
  .strictObject({
    /** on-failure: after a non-zero exit, a signal or a hang; always: after any exit; never. */
    policy: z.enum(['on-failure', 'always', 'never']).default('on-failure'),
    /** Wait before a restart: initial, doubling up to max; back to initial after resetAfter of stable uptime. */
    backoff: z.strictObject({ initial: duration.default(100), max: duration.default(15_000), resetAfter: duration.default(30_000) }).prefault({}),
    /** More than `burst` starts within `within` and the agent gives up (an escalation). */
    limit: z.strictObject({ burst: z.number().int().min(1).max(1000).default(5), within: duration.default(60_000) }).prefault({}),
  })
  .superRefine((r, ctx) => {
    if (r.backoff.max < r.backoff.initial) ctx.addIssue({ code: 'custom', message: `expected backoff.max (${r.backoff.max} ms) to be at least backoff.initial (${r.backoff.initial} ms)`, path: ['backoff', 'max'], input: undefined });
  });

const ProcessSection = z
  .strictObject({
    id,
    /** The program the agent starts and supervises: on PATH, or a path relative to cwd. */
    command: z.string().min(1).optional(),
    args: z.array(z.string()).default([]),
    /** Working directory of the command; default: the config file's directory. */
    cwd: z.string().min(1).optional(),
    /** Added to the agent's environment for the command. */
    env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: 'expected an environment variable name' }), z.union([z.string(), z.number(), z.boolean()]).transform(String)).default({}),
    /** The id of the store this process writes (its owner), for recovery after a crash. */
    store: id.optional(),
    /** Instead of command: watch a process the agent did not start, by the pid in this file (and its start time on line 2, if present). */
    pidFile: z.string().min(1).optional(),
    heartbeat: HeartbeatSection.optional(),
    restart: RestartSection.prefault({}),
    /** How long a stopping process has after SIGTERM before SIGKILL. */
    stopGrace: duration.default(5000),
  })
  .superRefine((p, ctx) => {
    if (p.command === undefined && p.pidFile === undefined) {
      ctx.addIssue({ code: 'custom', message: 'expected exactly one of command (the agent starts the process) or pidFile (the agent attaches to it); got neither', path: ['command'], input: undefined });
    }
    if (p.command !== undefined && p.pidFile !== undefined) {
      ctx.addIssue({ code: 'custom', message: 'expected exactly one of command (the agent starts the process) or pidFile (the agent attaches to it); got both', path: ['pidFile'], input: undefined });
    }
    if (p.pidFile !== undefined) {
      for (const key of ['args', 'env'] as const) {
        if (Object.keys(p[key]).length > 0) ctx.addIssue({ code: 'custom', message: `${key} applies only to a process the agent starts (command), not to an attached one (pidFile)`, path: [key], input: p[key] });
      }
      if (p.cwd !== undefined) ctx.addIssue({ code: 'custom', message: 'cwd applies only to a process the agent starts (command), not to an attached one (pidFile)', path: ['cwd'], input: p.cwd });
      if (p.heartbeat?.udp !== undefined && p.heartbeat.token === undefined) {
        ctx.addIssue({ code: 'custom', message: 'expected a token for the udp heartbeat of an attached process (pidFile): the agent cannot hand it a generated one', path: ['heartbeat', 'token'], input: undefined });
      }
    }
  });

/** One step of a healing rule: an action id, an action with options, or alternatives. */
const ActionStep = z.union([
  z.string().min(1),
  z.strictObject({ action: z.string().min(1), options: z.record(z.string(), z.unknown()).default({}), timeout: duration.optional() }),
]);
const HealingStep = z.union([ActionStep, z.strictObject({ anyOf: z.array(ActionStep).min(1) })], {
  error: 'expected an action id, { action, options, timeout } or { anyOf: [ … ] }',
});

const HealingSection = z.strictObject({
  /** Rules, first match wins. Without any, built-in defaults apply (see the self-healer's README). */
  rules: z
    .array(
      z.strictObject({
        on: z.string().min(1),
        /** Optional conditions: priority, a subject pattern (regular expression), evidence values. */
        when: z
          .strictObject({
            priority: z.enum(['P0', 'P1', 'P2', 'P3']).optional(),
            subject: z.string().optional(),
            evidence: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).optional(),
          })
          .optional(),
        do: z.array(HealingStep).min(1),
      }),
    )
    .optional(),
  /** Time each action may take (apply and verify) unless its step says otherwise. */
  actionTimeout: duration.default(30_000),
  /** Samples of a (failure kind, action) pair before its success rate reorders alternatives. */
  learnAfter: z.number().int().min(1).default(5),
});

/** A score line: a reading at `good` or better scores 100, at `bad` or worse 0, linear between. */
const distinct = { error: 'expected good and bad to differ' };
const ratio = z.number().min(0).max(2);
const ratioLine = (good: number, bad: number) => z.strictObject({ good: ratio.default(good), bad: ratio.default(bad) }).refine((l) => l.good !== l.bad, distinct).prefault({});
const durationLine = (good: number, bad: number) => z.strictObject({ good: duration.default(good), bad: duration.default(bad) }).refine((l) => l.good !== l.bad, distinct).prefault({});
const sizeLine = (good: number, bad: number) => z.strictObject({ good: size.default(good), bad: size.default(bad) }).refine((l) => l.good !== l.bad, distinct).prefault({});
const weight = (w: number) => z.number().min(0).max(100).default(w);

/** The health monitor (plugins/health-monitor/README.md): probes, score, history, prediction. */
const HealthSection = z
  .strictObject({
    enabled: z.boolean().default(true),
    /** How often every probe is sampled. */
    interval: duration.default(1000),
    /** How much history is kept per metric (served by GET /health/history). */
    retention: duration.default(3_600_000),
    /** Filesystems to watch besides agent.dataDir and each store's. */
    paths: z.array(z.string().min(1)).default([]),
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

const PluginSection = z.strictObject({
  /** A path (relative to the config file) or an npm package name. */
  module: z.string().min(1),
  options: z.record(z.string(), z.unknown()).default({}),
});

export const ConfigSchema = z.strictObject({
  agent: AgentSection.prefault({}),
  stores: z.array(StoreSection).default([]).refine((stores) => new Set(stores.map((s) => s.id)).size === stores.length, {
    error: 'expected store ids to be unique',
  }),
  /** Processes the agent supervises (command) or watches (pidFile). */
  processes: z.array(ProcessSection).default([]),
  healing: HealingSection.prefault({}),
  health: HealthSection.prefault({}),
  plugins: z.array(PluginSection).default([]),
}).superRefine(checkProcessReferences);

/** Process ids are unique; a process's store exists in stores[] and has one owner (one writer per store). */
function checkProcessReferences(cfg: { stores: ReadonlyArray<{ id: string }>; processes: ReadonlyArray<{ id: string; store?: string | undefined }> }, ctx: z.RefinementCtx): void {
  const storeIds = cfg.stores.map((s) => s.id);
  const ids = new Map<string, number>();
  const owners = new Map<string, string>();
  cfg.processes.forEach((p, i) => {
    const twin = ids.get(p.id);
    if (twin !== undefined) ctx.addIssue({ code: 'custom', message: `expected process ids to be unique ("${p.id}" is also processes[${twin}].id)`, path: ['processes', i, 'id'], input: p.id });
    ids.set(p.id, i);
    if (p.store === undefined) return;
    if (!storeIds.includes(p.store)) {
      ctx.addIssue({ code: 'custom', message: `expected the id of a store in stores[] (have: ${storeIds.join(', ') || 'none'})`, path: ['processes', i, 'store'], input: p.store });
      return;
    }
    const owner = owners.get(p.store);
    if (owner !== undefined) ctx.addIssue({ code: 'custom', message: `store "${p.store}" is already owned by process "${owner}"; one writer per store`, path: ['processes', i, 'store'], input: p.store });
    owners.set(p.store, p.id);
  });
}

/** The validated config, as the agent and plugins see it. */
export type AgentConfig = z.output<typeof ConfigSchema> & {
  /** Absolute path of the file it was loaded from, if any. */
  readonly source?: string;
};

/** The config as written in YAML (input form). */
export type AgentConfigInput = z.input<typeof ConfigSchema>;

/** JSON Schema (draft 2020-12) of the YAML input, for editors. */
export function configJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(ConfigSchema, { io: 'input', unrepresentable: 'any', target: 'draft-2020-12' }),
    $id: 'https://recovery-agent.local/config.schema.json',
    title: 'recovery-agent configuration',
  };
}
