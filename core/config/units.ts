/**
 * Parsers for the human units in the config: durations (`5s`, `2m`, `100ms`), sizes (`50MiB`,
 * `8KiB`, `1GB`) and rates (`50MiB/s`). Each returns undefined for input it does not accept, so
 * the schema can report the key path and the bad value.
 */
import ms from 'ms';

/** Milliseconds from `100ms`, `5s`, `2m`, `1h`, `1d`, or a non-negative number of milliseconds. */
export function parseDuration(input: string | number): number | undefined {
  if (typeof input === 'number') return Number.isFinite(input) && input >= 0 ? input : undefined;
  const trimmed = input.trim();
  // `ms` reads a bare number as milliseconds; in a config that is more often a slip than meant.
  if (!/^\d+(\.\d+)?\s*[a-z]+$/i.test(trimmed)) return undefined;
  const v = ms(trimmed as ms.StringValue);
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : undefined;
}

const SIZE_UNITS: Record<string, number> = {
  b: 1,
  kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12,
  kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40,
  k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40,
};

/** Bytes from `512`, `8KiB`, `50MiB`, `1GB` (SI) or `1G` (binary). */
export function parseSize(input: string | number): number | undefined {
  if (typeof input === 'number') return Number.isSafeInteger(input) && input >= 0 ? input : undefined;
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(input.trim());
  if (!m) return undefined;
  const unit = m[2]!.toLowerCase() || 'b';
  const factor = SIZE_UNITS[unit];
  if (factor === undefined) return undefined;
  const v = Math.round(Number(m[1]) * factor);
  return Number.isSafeInteger(v) ? v : undefined;
}

/** Bytes per second from `50MiB/s` or a number of bytes per second. */
export function parseRate(input: string | number): number | undefined {
  if (typeof input === 'number') return parseSize(input);
  const m = /^(.*?)\s*\/\s*s(ec)?$/i.exec(input.trim());
  return m ? parseSize(m[1]!) : undefined;
}
