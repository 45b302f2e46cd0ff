/**
 * The health history: a fixed-size ring of samples, one timestamp column and one Float64Array
 * column per metric (`score`, `component.disk`, `cpu.busy_ratio`, `disk:/var.eta_seconds`…).
 * A metric missing from a sample is stored as NaN and served as null. Memory is fixed at
 * capacity × 8 bytes per metric, allocated when a metric first appears.
 *
 * One writer (the monitor's tick) and readers on the same thread: no locking.
 */
import { parseDuration } from '../../core/config/units.js';
import { raError } from '../../core/errors.js';

export interface HistoryQuery {
  /** Metric names; a trailing `*` matches a prefix; `*` alone is every metric. Default: the scores. */
  readonly metrics?: readonly string[];
  /** Only samples at or after this time (ms since the epoch). */
  readonly since?: number;
  /** At most this many samples, the most recent. */
  readonly limit?: number;
}

export interface HistoryAnswer {
  readonly intervalMs: number;
  readonly capacity: number;
  readonly timestamps: number[];
  readonly series: Record<string, Array<number | null>>;
  /** Every metric name the history holds. */
  readonly metrics: string[];
}

/** What `GET /health/history` serves when no metric is asked for. */
export const DEFAULT_METRICS: readonly string[] = ['score', 'component.*'];

export class HealthHistory {
  private readonly times: Float64Array;
  private readonly columns = new Map<string, Float64Array>();
  /** Index the next sample is written at. */
  private head = 0;
  private count = 0;

  constructor(
    readonly capacity: number,
    readonly intervalMs: number,
  ) {
    this.times = new Float64Array(capacity);
  }

  /** Appends a sample. Not for a hot path: allocates a column for a metric seen the first time. */
  append(t: number, values: ReadonlyMap<string, number>): void {
    this.times[this.head] = t;
    for (const [name, column] of this.columns) column[this.head] = values.get(name) ?? NaN;
    for (const [name, v] of values) {
      if (this.columns.has(name)) continue;
      const column = new Float64Array(this.capacity).fill(NaN);
      column[this.head] = v;
      this.columns.set(name, column);
    }
    this.head = (this.head + 1) % this.capacity;
    this.count = Math.min(this.count + 1, this.capacity);
  }

  get size(): number {
    return this.count;
  }

  names(): string[] {
    return [...this.columns.keys()].sort();
  }

  /** The last `n` values of one metric, oldest first (NaN where missing). */
  last(name: string, n: number): number[] {
    const column = this.columns.get(name);
    const k = Math.min(n, this.count);
    const out: number[] = [];
    for (let i = k; i > 0; i--) out.push(column ? column[(this.head - i + this.capacity) % this.capacity]! : NaN);
    return out;
  }

  query(q: HistoryQuery = {}): HistoryAnswer {
    const patterns = q.metrics && q.metrics.length > 0 ? q.metrics : DEFAULT_METRICS;
    const names = this.names().filter((n) => patterns.some((p) => (p.endsWith('*') ? n.startsWith(p.slice(0, -1)) : n === p)));
    const idx: number[] = [];
    for (let i = this.count; i > 0; i--) {
      const at = (this.head - i + this.capacity) % this.capacity;
      if (q.since === undefined || this.times[at]! >= q.since) idx.push(at);
    }
    const picked = q.limit !== undefined && idx.length > q.limit ? idx.slice(idx.length - q.limit) : idx;
    const series: Record<string, Array<number | null>> = {};
    for (const name of names) {
      const column = this.columns.get(name)!;
      series[name] = picked.map((i) => (Number.isNaN(column[i]!) ? null : column[i]!));
    }
    return { intervalMs: this.intervalMs, capacity: this.capacity, timestamps: picked.map((i) => this.times[i]!), series, metrics: this.names() };
  }
}

/**
 * Reads `GET /health/history` query parameters: `metrics` (comma-separated), `since` (ms since
 * the epoch, or a duration back from now such as `5m`), `limit` (1 … capacity). Bad values are
 * RA_ERR_USAGE, which the HTTP API answers with 400.
 */
export function parseHistoryQuery(raw: Readonly<Record<string, unknown>>, capacity: number, now = Date.now()): HistoryQuery {
  const out: { metrics?: string[]; since?: number; limit?: number } = {};
  const text = (key: string): string | undefined => {
    const v = raw[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw raError('RA_ERR_USAGE', `${key} must be given once (got ${JSON.stringify(v)})`);
    return v;
  };
  const metrics = text('metrics');
  if (metrics !== undefined) out.metrics = metrics.split(',').map((s) => s.trim()).filter(Boolean);
  const since = text('since');
  if (since !== undefined) {
    const ms = /^\d{10,}$/.test(since) ? Number(since) : parseDuration(since);
    if (ms === undefined) throw raError('RA_ERR_USAGE', `since must be a time in ms since the epoch or a duration such as 5m (got ${JSON.stringify(since)})`);
    out.since = /^\d{10,}$/.test(since) ? ms : now - ms;
  }
  const limit = text('limit');
  if (limit !== undefined) {
    const n = Number(limit);
    if (!Number.isInteger(n) || n < 1 || n > capacity) throw raError('RA_ERR_USAGE', `limit must be an integer from 1 to ${capacity} (got ${JSON.stringify(limit)})`);
    out.limit = n;
  }
  return out;
}
