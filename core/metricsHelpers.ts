/**
 * Metrics fed from a plugin's own running totals: a Prometheus counter that, when scraped,
 * catches up with the total the plugin keeps (so plugins keep plain counters and no clock).
 */
import { Counter, type Registry } from 'prom-client';

export function counterFromTotals<L extends string>(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly L[],
  totals: () => Array<{ labels: Record<L, string>; value: number }>,
): Counter<L> {
  const seen = new Map<string, number>();
  return new Counter<L>({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      for (const { labels, value } of totals()) {
        const key = JSON.stringify(labels);
        const delta = value - (seen.get(key) ?? 0);
        if (delta > 0) this.inc(labels as never, delta);
        seen.set(key, Math.max(value, seen.get(key) ?? 0));
      }
    },
  });
}
