/**
 * `memory-pressure` (P2): the host's available memory is low — the `memory` probe's reading
 * (MemAvailable / MemTotal) scores below 50 on its own score line (`health.thresholds.memory`,
 * good 0.25 bad 0: below 12.5 % available by default), the same line that makes the memory
 * component critical — for `health.sustain` samples in a row. Published once per episode; the
 * episode ends after `sustain` samples at 50 or more.
 *
 * The evidence names who can give memory back: the supervised processes, biggest RSS first, and
 * the stores they own (`stores`), which the default rule's `clear-caches` asks to drop their
 * clean cached pages.
 */
import type { FailureInput } from '../../core/contracts/Failure.js';
import type { ProcessStatus } from '../../core/contracts/ProcessSupervisor.js';
import type { HealthConfig } from './configSection.js';
import { lineScore } from './score.js';

export const MEMORY_PRESSURE = 'memory-pressure';

export class MemoryPressureWatch {
  private streak = 0;
  private quiet = 0;
  private alerting = false;

  constructor(
    private readonly line: HealthConfig['thresholds']['memory'],
    private readonly sustain: number,
    private readonly processes: () => readonly ProcessStatus[],
  ) {}

  /** Feeds the memory probe's metrics of one sample (none: the probe failed, which changes nothing). */
  observe(metrics: Readonly<Record<string, number>> | undefined, now: number, publish: (f: FailureInput) => void): void {
    const ratio = metrics?.available_ratio;
    if (ratio === undefined) return;
    const score = lineScore(ratio, this.line);
    if (score >= 50) {
      this.streak = 0;
      if (this.alerting && ++this.quiet >= this.sustain) this.alerting = false;
      return;
    }
    this.quiet = 0;
    if (this.alerting || ++this.streak < this.sustain) return;
    this.alerting = true;
    const procs = this.processes()
      .filter((p) => p.state === 'running' && p.pid !== null)
      .sort((a, b) => (b.rssBytes ?? 0) - (a.rssBytes ?? 0))
      .map((p) => ({ id: p.id, pid: p.pid, rssBytes: p.rssBytes, store: p.store ?? null }));
    const stores = [...new Set(procs.flatMap((p) => (p.store ? [p.store] : [])))];
    publish({
      kind: MEMORY_PRESSURE,
      priority: 'P2',
      subject: 'host',
      detectedAt: now,
      fingerprint: `${MEMORY_PRESSURE}|host`,
      evidence: {
        availableBytes: metrics!.available_bytes ?? null,
        totalBytes: metrics!.total_bytes ?? null,
        availableRatio: ratio,
        score,
        threshold: this.line,
        processes: procs,
        ...(procs[0] ? { processId: procs[0].id } : {}),
        stores,
      },
    });
  }
}
