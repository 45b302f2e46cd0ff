/**
 * Loading a config: read the YAML, substitute `${ENV}` references, validate against the
 * schema, resolve relative paths against the config file's directory. Every error is
 * RA_ERR_CONFIG and names the key path, the bad value and what was expected.
 */
import path from 'node:path';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { raError } from '../errors.js';
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
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const first = doc.errors[0]!;
    throw raError('RA_ERR_CONFIG', `${source}: not valid YAML: ${first.message}`, { cause: first });
  }
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT }) ?? {};
  } catch (err) {
    if (/alias/i.test((err as Error).message)) throw aliasBomb(source, err);
    throw raError('RA_ERR_CONFIG', `${source}: not a usable config: ${(err as Error).message}`, { cause: err });
  }
  return validateConfig(raw, source, env);
}

/** Validates an already-parsed config object. */
export function validateConfig(raw: unknown, source: string, env: NodeJS.ProcessEnv = process.env): AgentConfig {
  const substituted = substituteEnv(raw, [], env, source);
  const result = ConfigSchema.safeParse(substituted, { reportInput: true });
  if (!result.success) {
    const lines = result.error.issues.map(describeIssue);
    throw raError('RA_ERR_CONFIG', `${source}: invalid config:\n  ${lines.join('\n  ')}`, {
      details: { issues: result.error.issues.map((i) => ({ path: formatPath(i.path), message: i.message })) },
    });
  }
  return resolvePaths(result.data, source);
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const where = formatPath(issue.path) || '(top level)';
  if (issue.code === 'unrecognized_keys') {
    return `${where}: unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}`;
  }
  const got = 'input' in issue && issue.input !== undefined ? ` (got ${JSON.stringify(issue.input)})` : issue.code === 'invalid_type' ? ' (missing)' : '';
  return `${where}: ${issue.message}${got}`;
}

function formatPath(p: readonly PropertyKey[]): string {
  return p.map((k, i) => (typeof k === 'number' ? `[${k}]` : `${i === 0 ? '' : '.'}${String(k)}`)).join('');
}

const ENV_REF = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/**
 * Replaces `${NAME}` and `${NAME:-default}` in string values (not keys, not YAML text, so a
 * variable can never inject structure). `$${` escapes a literal `${`.
 */
function substituteEnv(value: unknown, at: PropertyKey[], env: NodeJS.ProcessEnv, source: string): unknown {
  if (typeof value === 'string') {
    const escaped = value.split('$${');
    const replaced = escaped.map((part) =>
      part.replace(ENV_REF, (_m, name: string, fallback: string | undefined) => {
        const v = env[name];
        if (v !== undefined && v !== '') return v;
        if (fallback !== undefined) return fallback;
        throw raError('RA_ERR_CONFIG', `${source}: invalid config:\n  ${formatPath(at)}: environment variable ${name} is not set (write \${${name}:-default} for a default)`);
      }),
    );
    return replaced.join('${');
  }
  if (Array.isArray(value)) return value.map((v, i) => substituteEnv(v, [...at, i], env, source));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substituteEnv(v, [...at, k], env, source)]));
  }
  return value;
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
