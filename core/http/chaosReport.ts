/**
 * The chaos report on the dashboard (issue #17): `GET /chaos-report` answers the RTO histogram
 * and the per-kind rows of the latest `npm run chaos` report (`bench/results/chaos.json` in the
 * package, or `agent.http.chaosReport`). The file is read at each request — a new run replaces
 * it while the agent runs — and condensed here, so the page draws bars and rows and never parses
 * a report of unbounded size or trusts its shape: every value it gets is a number or a string.
 */
import { readFile, stat } from 'node:fs/promises';

/** Upper edges of the histogram's bins, in ms (the last bin is everything above 120 s). */
export const RTO_BIN_EDGES_MS: readonly number[] = [250, 500, 1000, 2000, 5000, 10_000, 30_000, 60_000, 120_000];
/** A report larger than this is refused (a long run of 50 trials × 30 kinds is ~1 MiB). */
export const MAX_REPORT_BYTES = 32 * 1024 * 1024;

export interface ChaosReportView {
  path: string;
  /** When the run ended (ISO), as the report says; null when it does not. */
  at: string | null;
  seed: number | null;
  trialsPerKind: number | null;
  /** Trials with an RTO, per bin: [fromMs, toMs) (toMs null: no upper edge). */
  bins: Array<{ fromMs: number; toMs: number | null; count: number; kinds: Record<string, number> }>;
  kinds: Array<{ kind: string; trials: number; passed: number; failed: number; unsupported: number; targetMs: number | null; p50Ms: number | null; p95Ms: number | null; maxMs: number | null }>;
  /** Trials that had an RTO (the histogram's total). */
  measured: number;
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const str = (v: unknown, max = 200): string | null => (typeof v === 'string' ? v.slice(0, max) : null);

/** Bins trials' RTOs (ms) into RTO_BIN_EDGES_MS. */
export function rtoHistogram(samples: ReadonlyArray<{ kind: string; rtoMs: number }>): ChaosReportView['bins'] {
  const bins: ChaosReportView['bins'] = [...RTO_BIN_EDGES_MS, null].map((toMs, i) => ({ fromMs: i === 0 ? 0 : RTO_BIN_EDGES_MS[i - 1]!, toMs, count: 0, kinds: {} }));
  for (const s of samples) {
    const i = RTO_BIN_EDGES_MS.findIndex((edge) => s.rtoMs < edge);
    const b = bins[i === -1 ? bins.length - 1 : i]!;
    b.count++;
    b.kinds[s.kind] = (b.kinds[s.kind] ?? 0) + 1;
  }
  return bins;
}

/** The report as the dashboard shows it; `null` with why when there is none to show. */
export async function readChaosReport(file: string): Promise<{ view: ChaosReportView } | { missing: string }> {
  let text: string;
  try {
    const st = await stat(file);
    if (st.size > MAX_REPORT_BYTES) return { missing: `${file} is ${st.size} bytes, more than the ${MAX_REPORT_BYTES} a chaos report may be` };
    text = await readFile(file, 'utf8');
  } catch (err) {
    return { missing: `no chaos report at ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): run \`npm run chaos\`` };
  }
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(text) as Record<string, unknown>;
  } catch (err) {
    return { missing: `${file} is not JSON: ${(err as Error).message}` };
  }
  if (typeof doc !== 'object' || doc === null || !Array.isArray(doc.trials) || !Array.isArray(doc.kinds)) return { missing: `${file} is not a chaos report (no trials and kinds)` };
  const samples: Array<{ kind: string; rtoMs: number }> = [];
  for (const t of doc.trials as unknown[]) {
    const r = t as Record<string, unknown> | null;
    const kind = str(r?.kind);
    const rto = num(r?.harnessRtoMs);
    // An RTO is a recovery's: a trial that failed is in its kind's row, not in the histogram.
    if (kind !== null && rto !== null && r?.status === 'passed') samples.push({ kind, rtoMs: rto });
  }
  const kinds = (doc.kinds as unknown[]).flatMap((k) => {
    const r = k as Record<string, unknown> | null;
    const kind = str(r?.kind);
    if (kind === null) return [];
    const rto = (r?.rtoMs ?? {}) as Record<string, unknown>;
    return [{ kind, trials: num(r?.trials) ?? 0, passed: num(r?.passed) ?? 0, failed: num(r?.failed) ?? 0, unsupported: num(r?.unsupported) ?? 0, targetMs: num(r?.targetMs), p50Ms: num(rto.p50), p95Ms: num(rto.p95), maxMs: num(rto.max) }];
  });
  return { view: { path: file, at: str(doc.at, 40), seed: num(doc.seed), trialsPerKind: num(doc.trialsPerKind), bins: rtoHistogram(samples), kinds, measured: samples.length } };
}
