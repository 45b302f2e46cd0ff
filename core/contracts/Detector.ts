import type { InjectionToken } from 'tsyringe';
import { createToken } from '../token.js';
import type { FailureSink } from './Failure.js';

/**
 * A detector watches something (processes, pages, the host) and publishes failures. A plugin
 * provides it and does not start it: the plugin host starts it once the plugin's own start hook
 * has run, with a sink that publishes on the failure bus under the plugin's id (so a detector
 * needs no FailureBus and cannot publish as another plugin), and stops it, last started first,
 * before the plugin's stop hook. A detector that throws on start fails its plugin.
 */
export interface Detector {
  /** Stable id, usually the plugin id. */
  readonly id: string;
  /** The failure kinds it may publish (what healing rules can expect from it). */
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
