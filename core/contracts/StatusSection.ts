import type { InjectionToken } from 'tsyringe';
import { createToken } from '../token.js';

/**
 * A section of `GET /status` that a plugin contributes (the supervised processes, the scrub's
 * progress, the health score…). Any number of plugins provide one each; the core puts every
 * running plugin's section into the status document under its `name`.
 */
export interface StatusSection {
  /** The key under which it appears in the status document. */
  readonly name: string;
  /** The section now, as JSON-serialisable data. A throw shows as `{ error: message }` in its place. */
  snapshot(): unknown;
}

/** Token under which plugins provide their `StatusSection`s. */
export const StatusSection: InjectionToken<StatusSection> = createToken<StatusSection>('recovery-agent.StatusSection');

/** Runtime guard: true when `v` implements `StatusSection`. */
export function isStatusSection(v: unknown): v is StatusSection {
  const s = v as StatusSection | null;
  return typeof s === 'object' && s !== null && typeof s.name === 'string' && s.name.length > 0 && typeof s.snapshot === 'function';
}
