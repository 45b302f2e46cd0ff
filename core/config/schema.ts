/**
 * The config schema: one YAML file, validated here, with defaults. Durations become
 * milliseconds, sizes bytes, rates bytes per second. `recovery-agent config schema` prints the
 * JSON Schema of the input form for editors.
 *
 * Sections are added as the components that read them land; unknown keys are errors, so a typo
 * never silently disables something.
 */
import os from 'node:os';
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

const id = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, { error: 'expected an id of lowercase letters, digits, ".", "_" or "-" (at most 63)' });

const listen = z.string().regex(/^(\[[0-9a-f:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, { error: 'expected host:port, e.g. 127.0.0.1:9464' });

const AgentSection = z.strictObject({
  /** Directory for the agent's own state (journal, scrub progress, learning). */
  dataDir: z.string().min(1).default('./var/agent'),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  http: z
    .strictObject({
      listen: listen.default('127.0.0.1:9464'),
      token: z.string().min(16, { error: 'expected a token of at least 16 characters' }).optional(),
    })
    .prefault({}),
  workers: z.number().int().min(1).max(256).default(() => os.availableParallelism()),
  maxConcurrentRecoveries: z.number().int().min(1).max(1024).default(3),
  rto: z
    .strictObject({ P0: duration.default(30_000), P1: duration.default(120_000), P2: duration.default(300_000), P3: duration.default(3_600_000) })
    .prefault({}),
  /** How long a plugin may take to register and start before it is marked failed. */
  pluginStartTimeout: duration.default(10_000),
  pluginStopTimeout: duration.default(10_000),
});

const StoreSection = z.strictObject({
  id,
  engine: z.string().min(1).default('pagestore'),
  path: z.string().min(1),
  scrub: z.strictObject({ rate: rate.default(50 * 2 ** 20), interval: duration.default(86_400_000) }).prefault({}),
});

const PluginSection = z.strictObject({
  /** A path (relative to the config file) or an npm package name. */
  module: z.string().min(1),
  options: z.record(z.string(), z.unknown()).default({}),
});

export const ConfigSchema = z.strictObject({
  agent: AgentSection.prefault({}),
  stores: z.array(StoreSection).default([]).refine((stores) => new Set(stores.map((s) => s.id)).size === stores.length, {
    error: 'expected store ids to be unique',
  }),
  plugins: z.array(PluginSection).default([]),
});

/** The validated config, as the agent and plugins see it. */
export type AgentConfig = z.output<typeof ConfigSchema> & {
  /** Absolute path of the file it was loaded from, if any. */
  readonly source?: string;
};

/** The config as written in YAML (input form). */
export type AgentConfigInput = z.input<typeof ConfigSchema>;

/** JSON Schema (draft 2020-12) of the YAML input, for editors. */
export function configJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(ConfigSchema, { io: 'input', unrepresentable: 'any', target: 'draft-2020-12' }),
    $id: 'https://recovery-agent.local/config.schema.json',
    title: 'recovery-agent configuration',
  };
}
