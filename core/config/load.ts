/**
 * Loading a config: read the YAML, substitute `${ENV}` references, validate against the
 * schema composed of the core's sections and the loaded plugins' (schema.ts), resolve relative
 * paths against the config file's directory. Every error is RA_ERR_CONFIG and names the key
 * path, the bad value and what was expected.
 *
 * The core knows no plugin, so it validates against the sections it is given: the app layer
 * makes a loader with its built-in plugins' sections (cli/config.ts).
 */
import path from 'node:path';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { raError } from '../errors.js';
import { markReferences, samePath, scalarOf, substituteEnv, unmarkStrings, withValueAt, type Substitution } from './envSubstitution.js';
import { MAX_ALIAS_COUNT, aliasBomb, checkConfigText, readConfigFile } from './limits.js';
import { composeConfigSchema, configJsonSchema, type AgentConfig, type ComposedConfigSchema } from './schema.js';
import type { ConfigSection } from './section.js';

export { MAX_CONFIG_BYTES } from './limits.js';

/** Loads configs against one composed schema: the core's sections and the given plugins'. */
export interface ConfigLoader {
  /** The composed schema. */
  readonly composed: ComposedConfigSchema;
  /** Reads, validates and resolves a config file. */
  loadConfigFile(file: string, env?: NodeJS.ProcessEnv): AgentConfig;
  /** Validates YAML text as if read from `source` (relative paths resolve against its directory). */
  parseConfigText(text: string, source: string, env?: NodeJS.ProcessEnv): AgentConfig;
  /** Validates an already-parsed config object, substituting `${ENV}` references in its string values. */
  validateConfig(raw: unknown, source: string, env?: NodeJS.ProcessEnv): AgentConfig;
  /** JSON Schema (draft 2020-12) of the YAML input, for editors. */
  configJsonSchema(): Record<string, unknown>;
}

/**
 * A loader for the core's sections plus `sections` (from the plugins the app layer loads).
 * Refuses two plugins claiming one section (RA_ERR_PLUGIN_CONFLICT).
 */
export function createConfigLoader(sections: readonly ConfigSection[]): ConfigLoader {
  const composed = composeConfigSchema(sections);
  return Object.freeze({
    composed,
    loadConfigFile: (file: string, env: NodeJS.ProcessEnv = process.env) => loadConfigFile(file, composed, env),
    parseConfigText: (text: string, source: string, env: NodeJS.ProcessEnv = process.env) => parseConfigText(text, source, composed, env),
    validateConfig: (raw: unknown, source: string, env: NodeJS.ProcessEnv = process.env) => validateConfig(raw, source, composed, env),
    configJsonSchema: () => configJsonSchema(composed),
  });
}

/** Reads, validates and resolves a config file against `composed`. */
export function loadConfigFile(file: string, composed: ComposedConfigSchema, env: NodeJS.ProcessEnv = process.env): AgentConfig {
  const absolute = path.resolve(file);
  return parseConfigText(readConfigFile(absolute), absolute, composed, env);
}

/** Validates YAML text as if read from `source` (relative paths resolve against its directory). */
export function parseConfigText(text: string, source: string, composed: ComposedConfigSchema, env: NodeJS.ProcessEnv = process.env): AgentConfig {
  checkConfigText(text, source);
  const marked = markReferences(text, source);
  const doc = parseDocument(marked.text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const first = doc.errors[0]!;
    // Its message quotes the line: show it as written, not as marked.
    first.message = marked.unmark(first.message);
    throw raError('RA_ERR_CONFIG', `${source}: not valid YAML: ${first.message}`, { cause: first });
  }
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT }) ?? {};
  } catch (err) {
    if (/alias/i.test((err as Error).message)) throw aliasBomb(source, err);
    throw raError('RA_ERR_CONFIG', `${source}: not a usable config: ${(err as Error).message}`, { cause: err });
  }
  return validateConfig(unmarkStrings(raw, marked.unmark), source, composed, env);
}

/** Problems listed in a config error; the rest are counted. */
const kMaxIssuesShown = 50;

/** One problem's line, cut to a readable length (a list of 10 000 unknown keys is one problem). */
function clip(line: string, max = 400): string {
  return line.length <= max ? line : `${line.slice(0, max)}… (${line.length - max} more characters)`;
}

/** Validates an already-parsed config object against `composed`, substituting `${ENV}` references in its string values. */
export function validateConfig(raw: unknown, source: string, composed: ComposedConfigSchema, env: NodeJS.ProcessEnv = process.env): AgentConfig {
  const { value, substitutions } = substituteEnv(raw, env, source, formatPath);
  const result = parseRetyped(composed, value, substitutions);
  if (!result.success) {
    // Every problem in one round, but not ten thousand lines of them.
    const issues = result.error.issues;
    const lines = issues.slice(0, kMaxIssuesShown).map((i) => clip(describeIssue(i, substitutions, composed)));
    if (issues.length > kMaxIssuesShown) lines.push(`… and ${issues.length - kMaxIssuesShown} more`);
    throw raError('RA_ERR_CONFIG', `${source}: invalid config:\n  ${lines.join('\n  ')}`, {
      details: { issueCount: issues.length, issues: issues.slice(0, 100).map((i) => ({ path: formatPath(i.path), message: i.message })) },
    });
  }
  return resolvePaths(result.data as AgentConfig, source, composed);
}

/**
 * Parses against the schema; where it refuses the text a variable gave and that text reads as a
 * number or a boolean, parses again with that instead — and keeps the text where the schema
 * refuses a number or boolean there too (it wants text), so the error is about the text.
 */
function parseRetyped(composed: ComposedConfigSchema, value: unknown, substitutions: readonly Substitution[]) {
  const parse = (v: unknown) => composed.schema.safeParse(v, { reportInput: true });
  const first = parse(value);
  if (first.success) return first;
  const retyped = substitutions.filter((s) => scalarOf(s.text) !== undefined && first.error.issues.some((i) => samePath(i.path, s.path)));
  if (retyped.length === 0) return first;
  const second = parse(retyped.reduce((v, s) => withValueAt(v, s.path, scalarOf(s.text)), value));
  if (second.success) return second;
  // A number where the schema wants text helps no one: that error is about the text.
  const kept = retyped.filter((s) => !second.error.issues.some((i) => samePath(i.path, s.path) && (i.code === 'invalid_type' || i.code === 'invalid_union')));
  if (kept.length === retyped.length) return second;
  return parse(kept.reduce((v, s) => withValueAt(v, s.path, scalarOf(s.text)), value));
}

function describeIssue(issue: z.core.$ZodIssue, substitutions: readonly Substitution[], composed: ComposedConfigSchema): string {
  const where = formatPath(issue.path) || '(top level)';
  if (issue.code === 'unrecognized_keys') {
    return `${where}: unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}${sectionHint(issue.path, composed)}`;
  }
  const from = substitutions.find((s) => samePath(s.path, issue.path));
  const fromText = from ? `, from ${from.names.map((n) => `\${${n}}`).join(' ')}` : '';
  const input = 'input' in issue ? issue.input : undefined;
  const shown = input === undefined ? '' : mayBeSecret(issue.path, input) ? redacted(input) : JSON.stringify(input);
  const got = input !== undefined ? ` (got ${shown}${fromText})` : issue.code === 'invalid_type' ? ' (missing)' : '';
  return `${where}: ${issue.message}${got}`;
}

/**
 * True where an error must not echo the value: under a key named like a credential (token,
 * secret, password, key), or a value of a process's environment (not the variable's name, which
 * an error about a bad name shows). Errors go to terminals, `--json` output and journald.
 */
function mayBeSecret(at: readonly PropertyKey[], input: unknown): boolean {
  const keys = at.filter((k): k is string => typeof k === 'string');
  if (keys.some((k) => /token|secret|password|passwd|credential|key$/i.test(k))) return true;
  return keys.includes('env') && input !== at[at.length - 1];
}

/** What an error says of a value it must not show: its kind and size only. */
function redacted(value: unknown): string {
  if (typeof value === 'string') return `a string of ${value.length} characters, not shown`;
  return `a value of type ${value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value}, not shown`;
}

/**
 * Where an unknown key sits among sections (the top level, or a store), the sections there:
 * a plugin's section is known only while its plugin is loaded, and the message says so.
 */
function sectionHint(at: readonly PropertyKey[], composed: ComposedConfigSchema): string {
  const scope = at.length === 0 ? 'root' : at.length === 2 && at[0] === 'stores' && typeof at[1] === 'number' ? 'store' : undefined;
  if (scope === undefined) return '';
  return ` (${scope === 'root' ? 'sections' : 'a store has'}: ${composed.keys[scope].join(', ')}; a plugin's section is known only when its plugin is loaded)`;
}

function formatPath(p: readonly PropertyKey[]): string {
  return p.map((k, i) => (typeof k === 'number' ? `[${k}]` : `${i === 0 ? '' : '.'}${String(k)}`)).join('');
}

function resolvePaths(config: AgentConfig, source: string, composed: ComposedConfigSchema): AgentConfig {
  const base = path.dirname(path.resolve(source));
  const abs = (p: string) => path.resolve(base, p);
  // Each plugin section resolves its own paths; one left out of the config stays out.
  const resolveSections = <T extends object>(target: T, scope: ConfigSection['scope']): T => {
    const out = { ...target } as Record<string, unknown>;
    for (const s of composed.sections) {
      if (s.scope === scope && s.resolvePaths && out[s.key] !== undefined) out[s.key] = s.resolvePaths(out[s.key], abs);
    }
    return out as T;
  };
  return {
    ...resolveSections(config, 'root'),
    source: path.resolve(source),
    agent: {
      ...config.agent,
      dataDir: abs(config.agent.dataDir),
      ...(config.agent.http.chaosReport !== undefined ? { http: { ...config.agent.http, chaosReport: abs(config.agent.http.chaosReport) } } : {}),
    },
    stores: config.stores.map((s) => resolveSections({ ...s, path: abs(s.path) }, 'store')),
    // A started process runs in its cwd (default: the config's directory); args stay as written.
    processes: config.processes.map((p) => ({
      ...p,
      ...(p.command !== undefined ? { cwd: abs(p.cwd ?? '.') } : {}),
      ...(p.pidFile !== undefined ? { pidFile: abs(p.pidFile) } : {}),
    })),
    // A module that looks like a path is relative to the config; anything else is a package name.
    plugins: config.plugins.map((p) => ({ ...p, module: /^\.{1,2}[\\/]|^\//.test(p.module) ? abs(p.module) : p.module })),
  };
}
