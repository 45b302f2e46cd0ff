/**
 * The config schema: one YAML file, validated here, with defaults. Durations become
 * milliseconds, sizes bytes, rates bytes per second.
 *
 * The core owns the sections every part of the agent shares — `agent`, the `stores` it protects
 * (id, engine, path), the `processes` it supervises, the third-party `plugins` it loads — and
 * composes them with the sections plugins contribute (section.ts): a top-level one such as
 * `health`, or one inside each store such as `snapshots`. The result is one zod schema and one
 * JSON Schema for editors (`recovery-agent config schema`). Unknown keys are errors, so a typo,
 * or a section whose plugin is not loaded, never silently disables something.
 */
import os from 'node:os';
import { z } from 'zod';
import { raError } from '../errors.js';
import { exposureProblem } from '../http/exposure.js';
import { ProcessSection } from './processes.js';
import { sectionPath, type ConfigSection, type PluginConfigSections, type StoreConfigSections } from './section.js';
import { duration, id, listen } from './valueTypes.js';

const AgentSection = z.strictObject({
  /** Directory for the agent's own state (journal, scrub progress, learning). */
  dataDir: z.string().min(1).default('./var/agent'),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** `auto`: pretty lines on a terminal, JSON lines otherwise; RECOVERY_AGENT_LOG_FORMAT overrides it (core/logger.ts). */
  logFormat: z.enum(['auto', 'json', 'pretty']).default('auto'),
  http: z
    .strictObject({
      /** Serve the HTTP API (health, status, metrics). */
      enabled: z.boolean().default(true),
      listen: listen.default('127.0.0.1:9464'),
      /** Bearer token: needed by mutating calls and, once set, by every endpoint but /health and /metrics. */
      token: z.string().min(16, { error: 'expected a token of at least 16 characters' }).optional(),
      /** Listen on a non-loopback address without a token (refused otherwise). */
      allowUnauthenticatedRemote: z.boolean().default(false),
      /** The chaos report (`npm run chaos`) whose RTO histogram the dashboard shows; default: the package's bench/results/chaos.json. */
      chaosReport: z.string().min(1).optional(),
    })
    .superRefine((http, ctx) => {
      const problem = exposureProblem(http);
      if (problem) ctx.addIssue({ code: 'custom', message: problem, path: ['listen'], input: http.listen });
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
  /**
   * Limits of each third-party plugin's child process. The first three become its V8 flags
   * (`--max-old-space-size`, `--max-semi-space-size`, `--stack-size`; past the heap limit V8
   * aborts the plugin's process); Buffers and ArrayBuffers live outside V8's heap, so the
   * plugin's process checks them against `maxExternalMemoryMb`.
   */
  pluginResourceLimits: z
    .strictObject({
      maxOldGenerationSizeMb: z.number().int().min(16).max(65_536).default(256),
      maxYoungGenerationSizeMb: z.number().int().min(1).max(1024).optional(),
      stackSizeMb: z.number().int().min(1).max(64).default(4),
      maxExternalMemoryMb: z.number().int().min(16).max(65_536).default(256),
    })
    .prefault({}),
  /** How long a call into a third-party plugin (canHandle, apply, verify, undo, sample) may take. */
  pluginCallTimeout: duration.default(30_000),
});

/** What the core knows of a store; plugins add their sections to it (scrub, snapshots, …). */
const StoreSection = z.strictObject({
  id,
  engine: z.string().min(1).default('pagestore'),
  path: z.string().min(1),
});

const PluginSection = z.strictObject({
  /** A path (relative to the config file) or an npm package name. */
  module: z.string().min(1),
  options: z.record(z.string(), z.unknown()).default({}),
});

const agentSection = AgentSection.prefault({});
/** Processes the agent supervises (command) or watches (pidFile). */
const processesSection = z.array(ProcessSection).default([]);
const pluginsSection = z.array(PluginSection).default([]);

/**
 * Cross-entry checks run even when entries have other problems (`when: always`), so that one
 * `config check` reports every problem at once; they read what parsed and skip what did not.
 */
const always = { when: () => true };

/** Each id's first index; an issue at `<list>[i].id` for every repeat. */
function checkUniqueIds(list: unknown, what: 'store' | 'process', ctx: z.RefinementCtx, at: PropertyKey[] = []): void {
  if (!Array.isArray(list)) return;
  const first = new Map<string, number>();
  const section = what === 'store' ? 'stores' : 'processes';
  list.forEach((entry: unknown, i) => {
    const id = (entry as { id?: unknown } | null)?.id;
    if (typeof id !== 'string') return;
    const twin = first.get(id);
    if (twin === undefined) first.set(id, i);
    else ctx.addIssue({ code: 'custom', message: `expected ${what} ids to be unique ("${id}" is also ${section}[${twin}].id)`, path: [...at, i, 'id'], input: id });
  });
}

function storeList<S extends z.ZodType<{ id: string }>>(store: S) {
  return z.array(store).default([]).superRefine((stores, ctx) => checkUniqueIds(stores, 'store', ctx), always);
}

/** The core's schema alone: what the types below are built from, and the keys no plugin may claim. */
const coreSchema = z
  .strictObject({ agent: agentSection, stores: storeList(StoreSection), processes: processesSection, plugins: pluginsSection })
  .superRefine(checkProcessReferences, always);

/** Keys the core owns, at the top level and in a store: no plugin may claim them. */
export const CORE_KEYS: Readonly<Record<ConfigSection['scope'], readonly string[]>> = {
  root: Object.keys(coreSchema.shape),
  store: Object.keys(StoreSection.shape),
};

/** The core's sections with the plugins' added: theirs go after `processes` and, in a store, after `path`. */
function rootSchema(rootShape: Record<string, z.ZodType>, storeShape: Record<string, z.ZodType>, checks: readonly ConfigSection[] = []) {
  const store = StoreSection.extend(storeShape);
  const root = z
    .strictObject({ agent: agentSection, stores: storeList(store as unknown as typeof StoreSection), processes: processesSection, ...rootShape, plugins: pluginsSection })
    .superRefine((cfg, ctx) => {
      checkProcessReferences(cfg as ProcessReferences, ctx);
      for (const s of checks) {
        s.checkConfig!(cfg as Record<string, unknown>, (path, message) => ctx.addIssue({ code: 'custom', message, path: [...path], input: undefined }));
      }
    }, always);
  return { root, keys: { root: Object.keys(root.shape), store: Object.keys(store.shape) } };
}

/** The core's schema composed with plugin sections: what a config is validated against. */
export interface ComposedConfigSchema {
  /** The zod schema of the whole config. */
  readonly schema: z.ZodType<Omit<AgentConfig, 'source'>, unknown>;
  /** The plugin sections in it, in the order given. */
  readonly sections: readonly ConfigSection[];
  /** The keys at the top level and in a store, the core's and the plugins', in the schema's order. */
  readonly keys: Readonly<Record<ConfigSection['scope'], readonly string[]>>;
}

/**
 * Composes the core's sections with the plugins' (in the order given; the JSON Schema lists
 * them so). Refuses a section that two plugins claim, or that claims a key of the core, with
 * RA_ERR_PLUGIN_CONFLICT naming both owners.
 */
export function composeConfigSchema(sections: readonly ConfigSection[]): ComposedConfigSchema {
  const claimed = new Map<string, ConfigSection>();
  const shapes: Record<ConfigSection['scope'], Record<string, z.ZodType>> = { root: {}, store: {} };
  for (const s of sections) {
    const where = sectionPath(s);
    if (CORE_KEYS[s.scope]?.includes(s.key)) {
      throw raError('RA_ERR_PLUGIN_CONFLICT', `plugin "${s.plugin}" contributes the config section "${where}", which is the core's own`, { details: { section: where, plugin: s.plugin } });
    }
    const twin = claimed.get(where);
    if (twin) {
      throw raError('RA_ERR_PLUGIN_CONFLICT', `plugins "${twin.plugin}" and "${s.plugin}" both contribute the config section "${where}"; a section has one owner`, {
        details: { section: where, plugins: [twin.plugin, s.plugin] },
      });
    }
    claimed.set(where, s);
    shapes[s.scope][s.key] = s.schema;
  }
  // The composed schema's output is the core's plus each section's, which PluginConfigSections
  // and StoreConfigSections describe by declaration merging: zod cannot know them statically.
  const { root, keys } = rootSchema(shapes.root, shapes.store, sections.filter((s) => s.checkConfig !== undefined));
  return { schema: root as unknown as ComposedConfigSchema['schema'], sections: [...sections], keys };
}

/** JSON Schema (draft 2020-12) of the YAML input of a composed schema, for editors. */
export function configJsonSchema(composed: ComposedConfigSchema): Record<string, unknown> {
  return {
    ...z.toJSONSchema(composed.schema, { io: 'input', unrepresentable: 'any', target: 'draft-2020-12' }),
    $id: 'https://recovery-agent.local/config.schema.json',
    title: 'recovery-agent configuration',
  };
}

interface ProcessReferences {
  stores: ReadonlyArray<{ id: string }>;
  processes: ReadonlyArray<{ id: string; store?: string | undefined }>;
}

/**
 * Process ids are unique; a process's store exists in stores[] and has one owner (one writer per
 * store). Runs on what parsed even when other keys did not (see `always`): reads defensively.
 */
function checkProcessReferences(cfg: ProcessReferences, ctx: z.RefinementCtx): void {
  if (!Array.isArray(cfg.processes)) return;
  checkUniqueIds(cfg.processes, 'process', ctx, ['processes']);
  const storeIds = Array.isArray(cfg.stores) ? [...new Set(cfg.stores.map((s) => (s as { id?: unknown } | null)?.id))] : null;
  const owners = new Map<string, string>();
  cfg.processes.forEach((p: unknown, i) => {
    const { id, store } = (p ?? {}) as { id?: unknown; store?: unknown };
    if (typeof store !== 'string' || storeIds === null) return;
    if (!storeIds.includes(store)) {
      ctx.addIssue({ code: 'custom', message: `expected the id of a store in stores[] (have: ${storeIds.filter((x) => typeof x === 'string').join(', ') || 'none'})`, path: ['processes', i, 'store'], input: store });
      return;
    }
    const owner = owners.get(store);
    if (owner !== undefined) ctx.addIssue({ code: 'custom', message: `store "${store}" is already owned by process "${owner}"; one writer per store`, path: ['processes', i, 'store'], input: store });
    owners.set(store, String(id));
  });
}

type CoreConfig = z.output<typeof coreSchema>;

/** A validated `stores[]` entry: the core's keys and the sections plugins add (typed by StoreConfigSections). */
export type StoreConfig = z.output<typeof StoreSection> & StoreConfigSections;

/** A validated `processes[]` entry. */
export type ProcessConfig = z.output<typeof ProcessSection>;

/**
 * The validated config, as the agent and plugins see it: the core's sections, and each plugin
 * section typed by the plugin that contributes it (PluginConfigSections).
 */
export type AgentConfig = Omit<CoreConfig, 'stores'> & { stores: StoreConfig[] } & PluginConfigSections & {
  /** Absolute path of the file it was loaded from, if any. */
  readonly source?: string;
};

/** The config as written in YAML (input form): the core's sections, and plugin sections as written. */
export type AgentConfigInput = z.input<typeof coreSchema> & { [section: string]: unknown };
