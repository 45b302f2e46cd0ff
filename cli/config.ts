/**
 * The config as this application knows it: the core's sections composed with the built-in
 * plugins' (builtinSections.ts). Every command that reads a config loads it through here;
 * `config schema` prints this composition's JSON Schema. The schema is composed on first use.
 */
import { createConfigLoader, type ConfigLoader } from '../core/config/load.js';
import type { AgentConfig } from '../core/config/schema.js';
import { builtinConfigSections } from './builtinSections.js';

export { SAMPLE_CONFIG } from './sampleConfig.js';
export { MAX_CONFIG_BYTES } from '../core/config/limits.js';

let loader: ConfigLoader | undefined;

/** The loader for the core's and the built-in plugins' sections. */
export function builtinConfigLoader(): ConfigLoader {
  return (loader ??= createConfigLoader(builtinConfigSections));
}

/** Reads, validates and resolves a config file. */
export function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env): AgentConfig {
  return builtinConfigLoader().loadConfigFile(file, env);
}

/** Validates YAML text as if read from `source` (relative paths resolve against its directory). */
export function parseConfigText(text: string, source: string, env: NodeJS.ProcessEnv = process.env): AgentConfig {
  return builtinConfigLoader().parseConfigText(text, source, env);
}

/** Validates an already-parsed config object, substituting `${ENV}` references in its string values. */
export function validateConfig(raw: unknown, source: string, env: NodeJS.ProcessEnv = process.env): AgentConfig {
  return builtinConfigLoader().validateConfig(raw, source, env);
}

/** JSON Schema (draft 2020-12) of the config file, for editors: the core's sections and the built-in plugins'. */
export function configJsonSchema(): Record<string, unknown> {
  return builtinConfigLoader().configJsonSchema();
}
