/**
 * Shared output for every benchmark: a printed table and a JSON file under bench/results/.
 * Every benchmark measures its baseline in the same run and reports ratios against it.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** One measured line of a benchmark table. */
export interface BenchRow {
  name: string;
  /** The quantity the table compares (e.g. GB/s, records/s). */
  value: number;
  unit: string;
  /** value / baseline value, filled in by `report`. */
  ratio?: number;
  /** The row this one's ratio is against, when not the report's baseline (a table of two kinds of rows). */
  baseline?: string;
  /** Extra measured figures worth keeping (pages/s, seconds, ...). */
  extra?: Record<string, number | string>;
}

export interface BenchReport {
  bench: string;
  baseline: string;
  rows: BenchRow[];
  goal?: { description: string; met: boolean };
  params?: Record<string, unknown>;
}

/** The repository root, whether run from the sources (bench/lib/) or from dist/bench/lib/. */
export function repoRoot(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  return here.includes(`${path.sep}dist${path.sep}`) ? path.resolve(here, '../../..') : path.resolve(here, '../..');
}

/** Fills in ratios against the named baseline row, prints a table and writes JSON. */
export function report(r: BenchReport): BenchReport {
  const base = r.rows.find((row) => row.name === r.baseline);
  if (!base) throw new Error(`benchmark ${r.bench}: baseline row "${r.baseline}" was not measured`);
  for (const row of r.rows) {
    const against = row.baseline === undefined ? base : r.rows.find((x) => x.name === row.baseline);
    if (!against) throw new Error(`benchmark ${r.bench}: row "${row.name}" names baseline "${row.baseline}", which was not measured`);
    row.ratio = row.value / against.value;
  }
  const width = Math.max(...r.rows.map((row) => row.name.length), 8);
  console.log(`\n${r.bench} (baseline: ${r.baseline})`);
  for (const row of r.rows) {
    const extra = row.extra ? '  ' + Object.entries(row.extra).map(([k, v]) => `${k}=${typeof v === 'number' ? fmt(v) : v}`).join(' ') : '';
    const vs = row.baseline === undefined ? '' : ` (vs ${row.baseline})`;
    console.log(`  ${row.name.padEnd(width)}  ${fmt(row.value).padStart(10)} ${row.unit.padEnd(10)} ×${row.ratio!.toFixed(2)}${vs}${extra}`);
  }
  if (r.goal) console.log(`  goal: ${r.goal.description} — ${r.goal.met ? 'MET' : 'NOT MET'}`);
  const out = path.join(repoRoot(), 'bench', 'results');
  mkdirSync(out, { recursive: true });
  const file = path.join(out, `${r.bench}.json`);
  const machine = { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, node: process.version, totalMemBytes: os.totalmem() };
  writeFileSync(file, JSON.stringify({ ...r, machine, at: new Date().toISOString() }, null, 2) + '\n');
  console.log(`  wrote ${path.relative(process.cwd(), file)}`);
  return r;
}

function fmt(v: number): string {
  if (Math.abs(v) >= 1e6) return (v / 1e6).toFixed(2) + 'M';
  if (Math.abs(v) >= 1e4) return (v / 1e3).toFixed(1) + 'k';
  return v.toFixed(2);
}

/** Runs fn `repeat` times and returns the best (lowest) wall time in seconds. */
export async function bestOf(repeat: number, fn: () => unknown | Promise<unknown>): Promise<number> {
  let best = Infinity;
  for (let i = 0; i < repeat; i++) {
    const t0 = process.hrtime.bigint();
    await fn();
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return best;
}
