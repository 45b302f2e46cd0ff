/**
 * What `config check` finds beyond the schema, all in one pass, each naming its key path: a store
 * whose engine no built-in plugin or configured plugin can provide, a store path that does not
 * exist while no configured process writes it (a typo would leave nothing protected), and a
 * plugin module that does not exist. A store a configured process writes may appear later (the
 * process creates it on first start), as may a replica's (the replication plugin makes it from a
 * base copy of its primary). Loads no engine: a path that exists but holds no store is
 * for the agent to report, once it runs.
 *
 * `run` refuses the store problems too; a missing plugin module it reports as that plugin
 * failed, and goes on without it (third-party plugins never stop the agent).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { AgentConfig } from '../core/config/schema.js';
import { raError } from '../core/errors.js';
import { builtinEngineNames } from './engines.js';

export interface ConfigProblem {
  readonly path: string;
  readonly message: string;
}

export function configProblems(cfg: AgentConfig, what: { plugins: boolean } = { plugins: true }): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const writers = new Map<string, string>();
  for (const p of cfg.processes) if (p.store) writers.set(p.store, p.id);
  const hasThirdParty = cfg.plugins.length > 0;
  for (const [i, s] of cfg.stores.entries()) {
    if (!builtinEngineNames().includes(s.engine)) {
      // A configured plugin may provide it; only the agent can tell by loading it.
      if (!hasThirdParty) problems.push({ path: `stores[${i}].engine`, message: `unknown storage engine "${s.engine}" (built in: ${builtinEngineNames().join(', ')}; no plugin is configured that could provide it)` });
      continue;
    }
    if (existsSync(s.path) || writers.has(s.id)) continue; // a writer creates it on first start
    // A replica's store is made by the replication plugin, from a base copy of its primary.
    if ((s as { replication?: { role?: string } }).replication?.role === 'replica') continue;
    problems.push({ path: `stores[${i}].path`, message: `${s.path} does not exist, and no configured process writes store "${s.id}" (processes[].store): nothing would be protected` });
  }
  for (const [i, p] of what.plugins ? cfg.plugins.entries() : []) {
    const problem = moduleProblem(p.module, cfg.source);
    if (problem) problems.push({ path: `plugins[${i}].module`, message: problem });
  }
  return problems;
}

/** Why the plugin module `specifier` (a path relative to the config, absolute, or a package name) cannot be found, or null. */
function moduleProblem(specifier: string, configFile: string | undefined): string | null {
  const base = configFile ?? path.join(process.cwd(), 'config.yaml');
  if (path.isAbsolute(specifier) || /^\.{1,2}[\\/]/.test(specifier)) {
    const file = path.resolve(path.dirname(base), specifier);
    return existsSync(file) ? null : `no such file: ${file}`;
  }
  try {
    createRequire(base).resolve(specifier);
    return null;
  } catch (err) {
    // An ESM-only package has no `require` entry, but it is there.
    if ((err as NodeJS.ErrnoException).code === 'ERR_PACKAGE_PATH_NOT_EXPORTED') return null;
  }
  try {
    import.meta.resolve(specifier); // the agent falls back to its own node_modules too
    return null;
  } catch {
    return `${specifier}: no such package, from ${path.dirname(base)} or from recovery-agent's own modules`;
  }
}

/** Throws RA_ERR_CONFIG listing every problem `configProblems` finds, each with its key path. */
export function assertNoConfigProblems(cfg: AgentConfig, what: { plugins: boolean } = { plugins: true }): void {
  const problems = configProblems(cfg, what);
  if (problems.length === 0) return;
  throw raError('RA_ERR_CONFIG', `${cfg.source ?? 'config'}: invalid config:\n  ${problems.map((p) => `${p.path}: ${p.message}`).join('\n  ')}`, {
    details: { issueCount: problems.length, issues: problems },
  });
}
