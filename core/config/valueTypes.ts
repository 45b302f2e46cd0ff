/**
 * The value types a config section is built from: durations, sizes and rates in human units,
 * ids and listen addresses. They live apart from the core's own sections so that a plugin's
 * section (its configSection.ts) can use them by importing zod and this file only —
 * `config check` must not load a plugin's runtime to validate its section.
 */
import { z } from 'zod';
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

/** An id of a store, a process or a plugin. */
export const id = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, { error: 'expected an id of lowercase letters, digits, ".", "_" or "-" (at most 63)' });

/** A `host:port` to listen on or connect to. */
export const listen = z.string().regex(/^(\[[0-9a-f:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, { error: 'expected host:port, e.g. 127.0.0.1:9464' });
