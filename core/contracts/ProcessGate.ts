/**
 * A process gate: a plugin's say on whether a configured process may run on this host now. The
 * process supervisor (crash detector) starts a supervised process only when no gate holds it,
 * stops one a gate comes to hold (a planned stop, not a crash), and starts it when the last hold
 * is lifted. The replication plugin holds the application of a store that is a replica here: the
 * same `processes` entry is in every member's config and runs only where its store is the
 * writable primary (#15, plugins/cluster/DESIGN.md).
 *
 * An instance an earlier agent started and that still runs is adopted whatever the gates say at
 * start (the agent's own restart must cost the application nothing); it is stopped only when a
 * gate announces a change (`subscribe`) and then holds it.
 */
import type { InjectionToken } from 'tsyringe';
import { createToken } from '../token.js';

export interface ProcessGate {
  readonly id: string;
  /** Why the process may not run on this host now, or null when this gate lets it. */
  hold(process: { readonly id: string; readonly store: string | undefined }): string | null;
  /** Calls `listener` whenever an answer of `hold` may have changed; returns the unsubscribe. */
  subscribe(listener: () => void): () => void;
}

export const ProcessGate: InjectionToken<ProcessGate> = createToken<ProcessGate>('recovery-agent.ProcessGate');

export function isProcessGate(v: unknown): v is ProcessGate {
  const g = v as ProcessGate | null;
  return typeof g === 'object' && g !== null && typeof g.id === 'string' && typeof g.hold === 'function' && typeof g.subscribe === 'function';
}
