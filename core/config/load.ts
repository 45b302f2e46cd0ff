/**
 * Loading a config: read the YAML, substitute `${ENV}` references, validate against the
 * schema, resolve relative paths against the config file's directory. Every error is
 * RA_ERR_CONFIG and names the key path, the bad value and what was expected.
 */
import path from 'node:path';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { raError } from '../errors.js';
import { markReferences, samePath, scalarOf, substituteEnv, unmarkStrings, withValueAt, type Substitution } from './envSubstitution.js';
import { MAX_ALIAS_COUNT, aliasBomb, checkConfigText, readConfigFile } from './limits.js';
import { ConfigSchema, type AgentConfig } from './schema.js';

export { MAX_CONFIG_BYTES } from './limits.js';

/** Reads, validates and resolves a config file. */
export function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env): AgentConfig {
  const absolute = path.resolve(file);
  return parseConfigText(readConfigFile(absolute), absolute, env);
}

/** Validates YAML text as if read from `source` (relative paths resolve against its directory). */
export function parseConfigText(text: string, source: string, env: NodeJS.ProcessEnv = process.env): AgentConfig {
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
  return validateConfig(unmarkStrings(raw, marked.unmark), source, env);
}

/** Problems listed in a config error; the rest are counted. */
const kMaxIssuesShown = 50;

/** One problem's line, cut to a readable length (a list of 10 000 unknown keys is one problem). */
function clip(line: string, max = 400): string {
  return line.length <= max ? line : `${line.slice(0, max)}… (${line.length - max} more characters)`;
}

/** Validates an already-parsed config object, substituting `${ENV}` references in its string values. */
export function validateConfig(raw: unknown, source: string, env: NodeJS.ProcessEnv = process.env): AgentConfig {
  const { value, substitutions } = substituteEnv(raw, env, source, formatPath);
  const result = parseRetyped(value, substitutions);
  if (!result.success) {
    // Every problem in one round, but not ten thousand lines of them.
    const issues = result.error.issues;
    const lines = issues.slice(0, kMaxIssuesShown).map((i) => clip(describeIssue(i, substitutions)));
    if (issues.length > kMaxIssuesShown) lines.push(`… and ${issues.length - kMaxIssuesShown} more`);
    throw raError('RA_ERR_CONFIG', `${source}: invalid config:\n  ${lines.join('\n  ')}`, {
      details: { issueCount: issues.length, issues: issues.slice(0, 100).map((i) => ({ path: formatPath(i.path), message: i.message })) },
    });
  }
  return resolvePaths(result.data, source);
}

/**
 * Parses against the schema; where it refuses the text a variable gave and that text reads as a
 * number or a boolean, parses again with that instead — and keeps the text where the schema
 * refuses a number or boolean there too (it wants text), so the error is about the text.
 */
function parseRetyped(value: unknown, substitutions: readonly Substitution[]) {
  const parse = (v: unknown) => ConfigSchema.safeParse(v, { reportInput: true });
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

function describeIssue(issue: z.core.$ZodIssue, substitutions: readonly Substitution[]): string {
  const where = formatPath(issue.path) || '(top level)';
  if (issue.code === 'unrecognized_keys') {
    return `${where}: unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}`;
  }
  const from = substitutions.find((s) => samePath(s.path, issue.path));
  const fromText = from ? `, from ${from.names.map((n) => `\${${n}}`).join(' ')}` : '';
  const got = 'input' in issue && issue.input !== undefined ? ` (got ${JSON.stringify(issue.input)}${fromText})` : issue.code === 'invalid_type' ? ' (missing)' : '';
  return `${where}: ${issue.message}${got}`;
}

function formatPath(p: readonly PropertyKey[]): string {
  return p.map((k, i) => (typeof k === 'number' ? `[${k}]` : `${i === 0 ? '' : '.'}${String(k)}`)).join('');
}

function resolvePaths(config: AgentConfig, source: string): AgentConfig {
  const base = path.dirname(path.resolve(source));
  const abs = (p: string) => path.resolve(base, p);
  return {
    ...config,
    source: path.resolve(source),
    agent: { ...config.agent, dataDir: abs(config.agent.dataDir) },
    stores: config.stores.map((s) => ({ ...s, path: abs(s.path), ...(s.snapshots ? { snapshots: { ...s.snapshots, dir: abs(s.snapshots.dir) } } : {}) })),
    health: { ...config.health, paths: config.health.paths.map(abs) },
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
