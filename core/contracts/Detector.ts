import type { InjectionToken } from 'tsyringe';
import { createToken } from '../token.js';
import type { FailureSink } from './Failure.js';

/**
 * A detector watches something (processes, pages, the host) and publishes failures. The host
 * starts it with the sink to publish to and stops it on shutdown.
 */
export interface Detector {
  /** Stable id, usually the plugin id. */
  readonly id: string;
  /** The failure kinds it may publish, for `/status` and rule validation. */
  readonly kinds: readonly string[];
  /** Begins watching; publishes to `sink` from now on. Must return promptly. */
  start(sink: FailureSink): void | Promise<void>;
  /** Stops watching and releases timers, sockets and children. */
  stop(): void | Promise<void>;
}

/** Token under which detector plugins provide their `Detector`. */
export const Detector: InjectionToken<Detector> = createToken<Detector>('recovery-agent.Detector');

/** Runtime guard: true when `v` implements `Detector`. */
export function isDetector(v: unknown): v is Detector {
  const d = v as Detector | null;
  return typeof d === 'object' && d !== null && typeof d.id === 'string' && d.id.length > 0 &&
    Array.isArray(d.kinds) && d.kinds.every((k) => typeof k === 'string') &&
    typeof d.start === 'function' && typeof d.stop === 'function';
}
