/**
 * The `processes:` section: the applications the agent starts and supervises (command) or
 * watches (pidFile), with their heartbeat and restart policy. A core section, not a plugin's:
 * processes are subjects of the agent, as stores are — the crash detector supervises them, the
 * restart action restarts them, the health monitor samples them, and a process names the store
 * it owns, which the core checks across sections (one writer per store).
 */
import { z } from 'zod';
import { duration, id, listen, size } from './valueTypes.js';

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

/**
 * A probe of real work, for a process that writes a store (`store:`): its owner's commit count,
 * read through the store's control socket every `interval`. No commit for `timeout` while
 * transactions are open or waiting is a hang — the heartbeat may still come (a stuck work loop
 * beside a live timer or thread). An idle process (no transaction open) is never hung. Set
 * `timeout` above the longest transaction the application holds open while nothing else commits.
 */
const WorkWatchSection = z
  .strictObject({
    enabled: z.boolean().default(true),
    interval: duration.default(1000),
    timeout: duration.default(30_000),
  })
  .superRefine((w, ctx) => {
    if (w.interval < 10 || w.timeout <= w.interval) {
      ctx.addIssue({ code: 'custom', message: `expected an interval of 10ms or more and a timeout longer than it (interval ${w.interval} ms, timeout ${w.timeout} ms)`, path: ['timeout'], input: w.timeout });
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

export const ProcessSection = z
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
    /** The work probe of a store's writer (only with `store`): no commit while transactions wait is a hang. */
    workWatch: WorkWatchSection.prefault({}),
    restart: RestartSection.prefault({}),
    /** How long a stopping process has after SIGTERM before SIGKILL. */
    stopGrace: duration.default(5000),
    /**
     * The RSS this process may reach (its own budget, below any cgroup limit): the health
     * monitor's memory-leak prediction runs against the lowest of this, its cgroup's memory.max
     * and the host's memory.
     */
    memoryLimit: size.optional(),
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
