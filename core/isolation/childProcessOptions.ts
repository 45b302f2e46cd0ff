/**
 * How an isolated plugin's child process is started: its Node flags are explicit (the
 * configured V8 limits, plus the agent's own module-resolution flags and nothing else, so an
 * `--inspect` or `--max-old-space-size` of the agent never reaches it), and its environment is
 * the agent's without the NODE_OPTIONS flags that would override those limits or open an
 * inspector on the agent's port.
 */
import { readFileSync } from 'node:fs';
import type { PluginResourceLimits } from './messages.js';

/** Flags of the agent that change how modules resolve and load; a plugin gets them too. */
const RESOLUTION_FLAGS_WITH_VALUE = new Set(['--conditions', '-C', '--import', '--require', '-r', '--loader', '--experimental-loader']);
const RESOLUTION_FLAGS = new Set([...RESOLUTION_FLAGS_WITH_VALUE, '--preserve-symlinks', '--preserve-symlinks-main', '--enable-source-maps', '--experimental-specifier-resolution']);

/** NODE_OPTIONS flags a plugin must not inherit; those in the first set may take their value as the next word. */
const UNSAFE_ENV_FLAGS_WITH_VALUE = new Set(['--max-old-space-size', '--max-semi-space-size', '--stack-size', '--inspect-port', '--debug-port']);
const UNSAFE_ENV_FLAGS = new Set([...UNSAFE_ENV_FLAGS_WITH_VALUE, '--inspect', '--inspect-brk', '--inspect-wait', '--max-young-generation-size']);

/** Share of the stack's rlimit V8 may use: the rest is for native frames and what ran before V8 measured. */
const kStackShare = 0.75;

/** Node's flags for a plugin's child process. */
export function pluginExecArgv(limits: PluginResourceLimits, agentExecArgv: readonly string[] = process.execArgv): string[] {
  const args: string[] = [];
  if (limits.maxOldGenerationSizeMb !== undefined) args.push(`--max-old-space-size=${limits.maxOldGenerationSizeMb}`);
  // V8's young generation is two semi-spaces plus a new large-object space of the same size.
  if (limits.maxYoungGenerationSizeMb !== undefined) args.push(`--max-semi-space-size=${Math.max(1, Math.round(limits.maxYoungGenerationSizeMb / 3))}`);
  const stackKb = limits.stackSizeMb === undefined ? undefined : stackSizeKb(limits.stackSizeMb);
  if (stackKb !== undefined) args.push(`--stack-size=${stackKb}`);
  for (let i = 0; i < agentExecArgv.length; i++) {
    const arg = agentExecArgv[i]!;
    const name = arg.split('=', 1)[0]!;
    if (!RESOLUTION_FLAGS.has(name)) continue;
    args.push(arg);
    if (name === arg && RESOLUTION_FLAGS_WITH_VALUE.has(name) && i + 1 < agentExecArgv.length) args.push(agentExecArgv[++i]!);
  }
  return args;
}

/**
 * V8's `--stack-size` (in KiB) for `stackSizeMb`, kept within the main thread's real stack
 * (its rlimit): V8 trusts the flag, and a value past the real stack ends in a segfault instead
 * of a RangeError. Undefined (Node's default, about 1 MB) when the rlimit cannot be read.
 */
export function stackSizeKb(stackSizeMb: number, limitsText: string | undefined = readLimits()): number | undefined {
  const m = limitsText === undefined ? null : /^Max stack size\s+(\d+|unlimited)\s/m.exec(limitsText);
  if (!m) return undefined;
  const rlimitKb = m[1] === 'unlimited' ? 8 * 1024 : Number(m[1]) / 1024; // unlimited: what Linux gives by default
  return Math.max(64, Math.floor(Math.min(stackSizeMb * 1024, rlimitKb * kStackShare)));
}

/** The agent's environment for a plugin, with the unsafe flags taken out of NODE_OPTIONS. */
export function pluginEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  if (!env.NODE_OPTIONS) return { ...env };
  const words = env.NODE_OPTIONS.split(/\s+/).filter(Boolean);
  const kept: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    const name = word.split('=', 1)[0]!.replace(/_/g, '-');
    if (!UNSAFE_ENV_FLAGS.has(name)) {
      kept.push(word);
      continue;
    }
    if (name === word.replace(/_/g, '-') && UNSAFE_ENV_FLAGS_WITH_VALUE.has(name) && /^\d/.test(words[i + 1] ?? '')) i++;
  }
  const { NODE_OPTIONS: _dropped, ...rest } = env;
  return kept.length > 0 ? { ...rest, NODE_OPTIONS: kept.join(' ') } : rest;
}

function readLimits(): string | undefined {
  try {
    return readFileSync('/proc/self/limits', 'utf8');
  } catch {
    return undefined;
  }
}
