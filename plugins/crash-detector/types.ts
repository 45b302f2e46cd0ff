/**
 * The crash detector's types. What other plugins see of it (the `ProcessSupervisor` service,
 * the status it reports per process, the failures it publishes) is a contract,
 * core/contracts/ProcessSupervisor.ts, re-exported here.
 */
import type { AgentConfig } from '../../core/config/schema.js';

/** One entry of `processes:` in the config, validated and with paths resolved. */
export type ProcessConfig = AgentConfig['processes'][number];

export * from '../../core/contracts/ProcessSupervisor.js';

/**
 * The environment variable a supervised process with a UDP heartbeat receives:
 * `udp://host:port/token`. Send the token as a datagram to host:port every 500 ms or so.
 */
export const HEARTBEAT_ENV = 'RECOVERY_AGENT_HEARTBEAT';
/** The environment variable naming the process's id in the config. */
export const PROCESS_ID_ENV = 'RECOVERY_AGENT_PROCESS_ID';
/** The environment variable naming the dataDir of the agent that started the process (orphans.ts). */
export const DATA_DIR_ENV = 'RECOVERY_AGENT_DATA_DIR';

/** How often the supervisor polls; tests shorten these. */
export interface SupervisorTiming {
  /** How often attached processes are checked (pid + start time). */
  attachPollMs: number;
  /** How often CPU, RSS and threads are sampled. */
  sampleMs: number;
}

/** Evidence as log fields: `processPid`, since the root logger's `pid` is the agent's own. */
export function logFields(evidence: { pid: number | null }): Record<string, unknown> {
  const { pid, ...rest } = evidence;
  return { ...rest, processPid: pid };
}
