/**
 * What the healer learned: per (failure kind, action), attempts, successes and time spent,
 * persisted under `agent.dataDir` (written to a temporary file, then renamed). Once every
 * alternative of a step has `learnAfter` samples, they are tried best first: highest success
 * rate, then lowest mean duration.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { PRIVATE_FILE_MODE } from '../../core/privateFiles.js';
import type { ActionRef } from './rules.js';

export interface ActionRecord {
  attempts: number;
  successes: number;
  totalMs: number;
}

export class Learning {
  private readonly table: Record<string, ActionRecord>;

  constructor(
    private readonly file: string,
    private readonly learnAfter: number,
  ) {
    let loaded: Record<string, ActionRecord> = {};
    try {
      loaded = JSON.parse(readFileSync(file, 'utf8')) as Record<string, ActionRecord>;
    } catch {
      // No file yet, or a damaged one: start over rather than refuse to heal.
    }
    this.table = loaded;
  }

  record(kind: string, action: string, success: boolean, ms: number): void {
    const r = (this.table[`${kind}|${action}`] ??= { attempts: 0, successes: 0, totalMs: 0 });
    r.attempts++;
    if (success) r.successes++;
    r.totalMs += ms;
    const tmp = `${this.file}.tmp`;
    writeFileSync(tmp, JSON.stringify(this.table, null, 1), { mode: PRIVATE_FILE_MODE });
    renameSync(tmp, this.file);
  }

  get(kind: string, action: string): ActionRecord | undefined {
    return this.table[`${kind}|${action}`];
  }

  /** The alternatives in the order to try them: configured order until all have enough samples. */
  order(kind: string, alternatives: readonly ActionRef[]): readonly ActionRef[] {
    if (alternatives.length < 2) return alternatives;
    const stats = alternatives.map((a) => this.get(kind, a.action));
    if (stats.some((s) => !s || s.attempts < this.learnAfter)) return alternatives;
    const score = (s: ActionRecord) => ({ rate: s.successes / s.attempts, mean: s.totalMs / s.attempts });
    return alternatives
      .map((a, i) => ({ a, i, ...score(stats[i]!) }))
      .sort((x, y) => y.rate - x.rate || x.mean - y.mean || x.i - y.i)
      .map((x) => x.a);
  }

  snapshot(): Readonly<Record<string, ActionRecord>> {
    return this.table;
  }
}
