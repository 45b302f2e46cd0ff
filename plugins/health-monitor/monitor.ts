/**
 * The health monitor's loop: every `health.interval` it samples every probe, scores the host
 * (score.ts), appends to the history (history.ts), feeds each resource's predictor
 * (predictor.ts), and publishes failures:
 *
 *   health-degraded  P3  the level fell to degraded (50–79) and held for `sustain` samples
 *   health-critical  P2  the level fell to critical (below 50) and held for `sustain` samples
 *   predicted-exhaustion P2  a resource runs out within the horizon (see predictor.ts)
 *   memory-leak          P2  a supervised process's RSS reaches its limit within the horizon
 *                            (the same predictor, fed per process: storageProbes.ts)
 *   memory-pressure      P2  host memory is low (memoryPressure.ts, through `observe`)
 *
 * Runs on the main thread; one tick at a time (a tick that overruns delays the next). A probe
 * that throws, or has not answered within max(interval, 1 s), is left out of that sample's score
 * and shown with its error; while its sample is still pending it is not called again.
 */
import type { Logger } from 'pino';
import type { FailureSink } from '../../core/contracts/Failure.js';
import type { HealthProbe, HealthResource, HealthSample } from '../../core/contracts/HealthProbe.js';
import { describeError } from '../../core/errors.js';
import { HealthHistory } from './history.js';
import type { HealthConfig } from './hostProbes.js';
import { ExhaustionPredictor, type Prediction } from './predictor.js';
import { LEVEL_RANK, blame, combineScores, round1, type Combined, type ComponentScore, type HealthLevel } from './score.js';

export const HEALTH_DEGRADED = 'health-degraded';
export const HEALTH_CRITICAL = 'health-critical';
export const PREDICTED_EXHAUSTION = 'predicted-exhaustion';
export const MEMORY_LEAK = 'memory-leak';

/** What a process's RSS resource carries besides its reading, for a `memory-leak` failure. */
export interface LeakFacts {
  readonly processId: string;
  readonly pid: number;
  readonly rssBytes: number;
  readonly limitBytes: number;
  /** Where the limit comes from: `memoryLimit` (config), `cgroup` (memory.max), or `host` (MemTotal). */
  readonly limitSource: 'memoryLimit' | 'cgroup' | 'host';
  readonly store?: string;
}

export interface ProbeState {
  readonly id: string;
  readonly score: number | null;
  readonly metrics: Readonly<Record<string, number>>;
  readonly error?: string;
  /** The probe's word on a low score (HealthSample.reason). */
  readonly reason?: string;
}

export interface PredictionState extends Prediction {
  readonly resource: string;
  readonly subject: string;
  readonly unit: string;
  readonly available: number;
  readonly total: number;
  readonly stores: readonly string[];
}

export interface HealthSnapshot {
  /** When the last sample was taken (ms since the epoch); null before the first. */
  readonly at: number | null;
  readonly score: number;
  /** The level in force (changes only after `sustain` samples). */
  readonly level: HealthLevel;
  /** The last sample's own level. */
  readonly sampleLevel: HealthLevel;
  readonly components: readonly ComponentScore[];
  readonly probes: readonly ProbeState[];
  readonly predictions: readonly PredictionState[];
  /** Wall time of the last tick, ms. */
  readonly tickMs: number;
}

export interface MonitorOptions {
  readonly config: HealthConfig;
  readonly log: Logger;
  /** Every probe to sample (looked up each tick: plugins may provide probes after we start). */
  readonly probes: () => readonly HealthProbe[];
  readonly sink: FailureSink;
  /** Called with every sample's probe states (the memory-pressure watch reads the memory probe's). */
  readonly observe?: (probes: readonly ProbeState[], now: number, publish: (f: Parameters<FailureSink['publish']>[0]) => void) => void;
}

export class HealthMonitor {
  readonly history: HealthHistory;
  private readonly predictors = new Map<string, ExhaustionPredictor>();
  /** The instance each resource's predictor fits (see predict). */
  private readonly instances = new Map<string, unknown>();
  private readonly pending = new Map<string, Promise<HealthSample>>();
  private level: HealthLevel = 'healthy';
  /** Samples in a row on the same side of the level in force, and the levels they had. */
  private streak: HealthLevel[] = [];
  private last: HealthSnapshot = { at: null, score: 100, level: 'healthy', sampleLevel: 'healthy', components: [], probes: [], predictions: [], tickMs: 0 };
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private nextAt = 0;
  private ticking: Promise<void> | null = null;
  private readonly warned = new Set<string>();

  constructor(private readonly o: MonitorOptions) {
    this.history = new HealthHistory(Math.ceil(o.config.retention / o.config.interval), o.config.interval);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.nextAt = Date.now();
    this.schedule();
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.ticking;
  }

  snapshot(): HealthSnapshot {
    return this.last;
  }

  private schedule(): void {
    if (!this.running) return;
    this.timer = setTimeout(() => {
      this.nextAt += this.o.config.interval;
      // Fell behind (a slow tick, a suspended host): start the cadence again from now.
      if (this.nextAt < Date.now() - this.o.config.interval) this.nextAt = Date.now();
      const ticking = this.tick().then(
        () => undefined,
        (err: unknown) => this.o.log.error({ err: describeError(err) }, 'health tick failed'),
      );
      this.ticking = ticking;
      void ticking.finally(() => this.schedule());
    }, Math.max(0, this.nextAt - Date.now()));
  }

  /**
   * Takes one sample of every probe and acts on it. Exposed for tests, which drive time
   * themselves. The default clock is monotonic (a clock stepped back must not reorder the fit).
   */
  async tick(now = performance.timeOrigin + performance.now()): Promise<HealthSnapshot> {
    const t0 = performance.now();
    const probes = this.uniqueProbes();
    const states = await Promise.all(probes.map((p) => this.sampleOne(p)));

    const counted = states.filter((s): s is { state: ProbeState & { score: number }; sample: HealthSample } => s.state.score !== null && s.sample !== null);
    const combined = combineScores(counted.map((s) => ({ id: s.state.id, score: s.state.score })), (c) => this.weightOf(c), this.o.config.weakestLinkMargin);
    const values = new Map<string, number>([['score', combined.score]]);
    for (const c of combined.components) values.set(`component.${c.component}`, round1(c.score));
    for (const { state } of states) {
      if (state.score !== null) values.set(`${state.id}.score`, round1(state.score));
      for (const [k, v] of Object.entries(state.metrics)) values.set(`${state.id}.${k}`, v);
    }

    const predictions: PredictionState[] = [];
    if (this.o.config.prediction.enabled) {
      for (const s of counted) {
        for (const [name, r] of Object.entries(s.sample.resources ?? {})) {
          if (!isResource(r)) continue;
          const p = this.predict(name, r, now);
          predictions.push(p);
          values.set(`${name}.available`, r.available);
          if (p.etaSeconds !== null) values.set(`${name}.eta_seconds`, p.etaSeconds);
          values.set(`${name}.probability`, p.probability);
        }
      }
    }
    this.history.append(now, values);
    this.o.observe?.(states.map((s) => s.state), now, (f) => this.publish(f));
    this.updateLevel(combined, states.map((s) => s.state));
    this.last = { at: now, score: combined.score, level: this.level, sampleLevel: combined.level, components: combined.components, probes: states.map((s) => s.state), predictions, tickMs: performance.now() - t0 };
    return this.last;
  }

  private weightOf(component: string): number {
    const w = this.o.config.weights as Record<string, unknown>;
    const builtin = component !== 'probes' ? w[component] : undefined;
    return typeof builtin === 'number' ? builtin : (this.o.config.weights.probes[component] ?? 1);
  }

  private uniqueProbes(): HealthProbe[] {
    const byId = new Map<string, HealthProbe>();
    for (const p of this.o.probes()) {
      const twin = byId.get(p.id);
      if (twin && twin !== p) this.warnOnce(`dup:${p.id}`, { probe: p.id }, 'two health probes share an id; the first is used');
      else byId.set(p.id, p);
    }
    return [...byId.values()];
  }

  private async sampleOne(p: HealthProbe): Promise<{ state: ProbeState; sample: HealthSample | null }> {
    const fail = (error: string) => ({ state: { id: p.id, score: null, metrics: {}, error }, sample: null });
    if (this.pending.has(p.id)) return fail('still sampling: the previous sample has not finished');
    const work = Promise.resolve().then(() => p.sample());
    this.pending.set(p.id, work);
    void work.catch(() => undefined).finally(() => this.pending.delete(p.id));
    const limit = Math.max(1000, this.o.config.interval);
    let timer: NodeJS.Timeout | undefined;
    try {
      const sample = await Promise.race([work, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no sample within ${limit} ms`)), limit)))]);
      if (typeof sample !== 'object' || sample === null || typeof sample.score !== 'number' || !Number.isFinite(sample.score)) {
        throw new Error(`sample() must resolve to { metrics, score } with a finite score (got ${JSON.stringify(sample)})`);
      }
      const metrics: Record<string, number> = {};
      for (const [k, v] of Object.entries(sample.metrics ?? {})) if (typeof v === 'number' && Number.isFinite(v)) metrics[k] = v;
      this.warned.delete(`probe:${p.id}`);
      const reason = typeof sample.reason === 'string' ? { reason: sample.reason } : {};
      return { state: { id: p.id, score: Math.min(100, Math.max(0, sample.score)), metrics, ...reason }, sample };
    } catch (err) {
      this.warnOnce(`probe:${p.id}`, { probe: p.id, err: describeError(err) }, 'health probe failed; left out of the score until it answers');
      return fail(describeError(err));
    } finally {
      clearTimeout(timer);
    }
  }

  private predict(name: string, r: HealthResource, now: number): PredictionState {
    let predictor = this.predictors.get(name);
    // A resource of one instance (a process's RSS: its pid) starts a fresh fit with a new one.
    const instance = (r as { instance?: unknown }).instance;
    if (instance !== undefined && this.instances.get(name) !== instance) {
      this.instances.set(name, instance);
      predictor = undefined;
    }
    if (!predictor) {
      const p = this.o.config.prediction;
      predictor = new ExhaustionPredictor({ windowMs: p.window, recentMs: p.recent, horizonMs: p.horizon, guard: p.guard, sustain: p.sustain, minProbability: p.minProbability });
      this.predictors.set(name, predictor);
    }
    const prediction = predictor.push(now, r);
    const state: PredictionState = { ...prediction, resource: name, subject: r.subject ?? name, unit: r.unit, available: r.available, total: r.total, stores: r.stores ?? [] };
    const leak = (r as { leak?: LeakFacts }).leak;
    if (prediction.fire) {
      if (leak) this.publishLeak(state, leak, now);
      else this.publishExhaustion(state, now);
    }
    return state;
  }

  private publishExhaustion(p: PredictionState, now: number): void {
    const evidence = {
      resource: p.resource,
      unit: p.unit,
      available: p.available,
      total: p.total,
      availableRatio: p.total > 0 ? p.available / p.total : null,
      ratePerSecond: p.ratePerSecond,
      etaSeconds: p.etaSeconds,
      predictedAt: now + (p.etaSeconds ?? 0) * 1000,
      probability: p.probability,
      horizonSeconds: this.o.config.prediction.horizon / 1000,
      stores: p.stores,
      ...(p.stores.length === 1 ? { store: p.stores[0] } : {}),
    };
    this.o.log.warn(evidence, 'exhaustion predicted');
    this.publish({ kind: PREDICTED_EXHAUSTION, priority: 'P2', subject: p.subject, evidence, detectedAt: now, fingerprint: `${PREDICTED_EXHAUSTION}|${p.resource}` });
  }

  /** A process's RSS predicted to reach its limit within the horizon (storageProbes.ts processProbe). */
  private publishLeak(p: PredictionState, leak: LeakFacts, now: number): void {
    const evidence = {
      ...leak,
      ratePerSecond: p.ratePerSecond,
      etaSeconds: p.etaSeconds,
      predictedAt: now + (p.etaSeconds ?? 0) * 1000,
      probability: p.probability,
      horizonSeconds: this.o.config.prediction.horizon / 1000,
      /** The RSS a restarted process must be back under: the prediction's guard line. */
      thresholdBytes: Math.round(leak.limitBytes * (1 - this.o.config.prediction.guard)),
      ...(leak.store ? { stores: [leak.store] } : {}),
    };
    this.o.log.warn(evidence, 'memory leak: the process reaches its memory limit within the horizon');
    this.publish({ kind: MEMORY_LEAK, priority: 'P2', subject: p.subject, evidence, detectedAt: now, fingerprint: `${MEMORY_LEAK}|${leak.processId}|${leak.pid}` });
  }

  /** Moves the level in force once `sustain` samples in a row are all worse (or all better) than it. */
  private updateLevel(c: Combined, probes: readonly ProbeState[]): void {
    const diff = LEVEL_RANK[c.level] - LEVEL_RANK[this.level];
    const first = this.streak[0];
    if (diff === 0 || (first !== undefined && Math.sign(LEVEL_RANK[first] - LEVEL_RANK[this.level]) !== Math.sign(diff))) this.streak = [];
    if (diff === 0) return;
    this.streak.push(c.level);
    if (this.streak.length < this.o.config.sustain) return;
    // The level the host held throughout: the mildest of a worse streak, the worst of a better one.
    const ranks = this.streak.map((l) => LEVEL_RANK[l]);
    const rank = diff > 0 ? Math.min(...ranks) : Math.max(...ranks);
    const previous = this.level;
    this.level = (Object.keys(LEVEL_RANK) as HealthLevel[]).find((l) => LEVEL_RANK[l] === rank)!;
    this.streak = [];
    if (diff < 0) {
      this.o.log.info({ level: this.level, previous, score: c.score }, 'host health improved');
      return;
    }
    const metricsOf = new Map(probes.map((p) => [p.id, p.metrics]));
    const culprits = blame(c).map((x) => ({ component: x.component, score: round1(x.score), weight: x.weight, probes: x.probes.map((p) => ({ id: p.id, score: round1(p.score), metrics: metricsOf.get(p.id) ?? {} })) }));
    const evidence = { score: c.score, level: this.level, previousLevel: previous, blame: culprits, components: Object.fromEntries(c.components.map((x) => [x.component, round1(x.score)])) };
    this.o.log.warn({ ...evidence, blame: culprits.map((x) => `${x.component} ${x.score}`) }, 'host health fell');
    const critical = this.level === 'critical';
    this.publish({ kind: critical ? HEALTH_CRITICAL : HEALTH_DEGRADED, priority: critical ? 'P2' : 'P3', subject: 'host', evidence });
  }

  private publish(f: Parameters<FailureSink['publish']>[0]): void {
    try {
      this.o.sink.publish(f);
    } catch (err) {
      this.o.log.error({ err: describeError(err), kind: f.kind }, 'cannot publish failure');
    }
  }

  private warnOnce(key: string, obj: Record<string, unknown>, msg: string): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.o.log.warn(obj, msg);
  }
}

function isResource(r: unknown): r is HealthResource {
  const x = r as HealthResource | null;
  return typeof x === 'object' && x !== null && Number.isFinite(x.available) && Number.isFinite(x.total) && typeof x.unit === 'string' && (x.consumed === undefined || Number.isFinite(x.consumed));
}
