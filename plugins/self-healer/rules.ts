/**
 * Healing rules: which chain of actions answers which failure. First matching rule wins.
 * A rule's `do` is a sequence of steps, each done in turn; a step is one action, or
 * `{ anyOf: [...] }` alternatives tried (best first, once learning has enough samples) until
 * one verifies.
 */
import type { AgentConfig } from '../../core/config/schema.js';
import type { Failure } from '../../core/contracts/Failure.js';

export interface ActionRef {
  readonly action: string;
  readonly options: Readonly<Record<string, unknown>>;
  readonly timeout?: number;
}

export interface RuleConditions {
  readonly priority?: string;
  /** A regular expression the subject must match. */
  readonly subject?: string;
  readonly evidence?: Readonly<Record<string, string | number | boolean>>;
}

export interface Rule {
  readonly on: string;
  readonly when?: RuleConditions;
  readonly steps: ReadonlyArray<readonly ActionRef[]>;
}

/** The rules used when the config names none. */
export const DEFAULT_RULES: ReadonlyArray<{ on: string; do: StepInput[] }> = [
  { on: 'process-crash', do: ['recover-store', 'restart-process'] },
  { on: 'process-hang', do: ['restart-process'] },
  { on: 'recovery-requested', do: ['recover-store'] },
  // A replica's page comes from its primary (the replication plugin's action), any other from the
  // data repairer's sources; each action takes only its own stores.
  { on: 'page-corruption', do: [{ anyOf: ['repair-page', 'repair-replica-page'] }] },
  { on: 'predicted-exhaustion', do: ['checkpoint-store'] },
  { on: 'memory-pressure', do: ['clear-caches'] },
  { on: 'memory-leak', do: ['graceful-restart'] },
  { on: 'primary-failure', do: ['cluster-failover'] },
  // A clustered store fails over to a replica; any other moves to its spare path (redirect-store).
  { on: 'disk-failure', do: [{ anyOf: ['cluster-failover', 'redirect-store'] }] },
  // Damage to what a restore needs (the snapshot manager's detector and actions).
  { on: 'snapshot-corruption', do: ['repair-snapshot'] },
  { on: 'archive-corruption', do: ['repair-archive'] },
  { on: 'wal-corruption', do: ['checkpoint-past-damage'] },
];

type StepInput = string | { action: string; options?: Record<string, unknown>; timeout?: number } | { anyOf: Array<string | { action: string; options?: Record<string, unknown>; timeout?: number }> };

function ref(s: string | { action: string; options?: Record<string, unknown>; timeout?: number }): ActionRef {
  return typeof s === 'string' ? { action: s, options: {} } : { action: s.action, options: s.options ?? {}, ...(s.timeout !== undefined ? { timeout: s.timeout } : {}) };
}

export function compileRules(config: AgentConfig): Rule[] {
  const source = (config.healing.rules ?? DEFAULT_RULES) as Array<{ on: string; when?: Rule['when']; do: StepInput[] }>;
  return source.map((r) => ({
    on: r.on,
    ...(r.when ? { when: r.when } : {}),
    steps: r.do.map((step) => (typeof step === 'object' && 'anyOf' in step ? step.anyOf.map(ref) : [ref(step)])),
  }));
}

export function matchRule(rules: readonly Rule[], failure: Failure): Rule | undefined {
  return rules.find((r) => {
    if (r.on !== failure.kind && r.on !== '*') return false;
    const w = r.when;
    if (!w) return true;
    if (w.priority && w.priority !== failure.priority) return false;
    if (w.subject && !new RegExp(w.subject).test(failure.subject)) return false;
    if (w.evidence) for (const [k, v] of Object.entries(w.evidence)) if (failure.evidence[k] !== v) return false;
    return true;
  });
}
