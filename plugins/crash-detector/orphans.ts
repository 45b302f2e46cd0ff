/**
 * The fallback of adoption when `<dataDir>/processes/instances.json` has no record of a process
 * (the file was lost, or the instance was started by an agent that could not write it): find the
 * orphan an earlier agent of this same dataDir started, by what the supervisor put in its
 * environment — `RECOVERY_AGENT_PROCESS_ID=<id>` and `RECOVERY_AGENT_DATA_DIR=<dataDir>` — and by
 * its command line and working directory. Without it, a restarted agent would start a second
 * instance that only crash-loops on "store is locked by process N".
 *
 * Reading another process's environment needs the same user or root, as the agent runs. A
 * process that changed its own environment, or one started by another agent (another dataDir),
 * is not found; nothing is adopted on a guess: exactly one match, or none.
 */
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { readProcStat } from './procStats.js';
import { readCmdline, type InstanceRecord } from './processRecords.js';
import { DATA_DIR_ENV, HEARTBEAT_ENV, PROCESS_ID_ENV } from './types.js';

export interface OrphanQuery {
  readonly id: string;
  readonly dataDir: string;
  readonly argv: readonly string[];
  readonly cwd: string;
  /** Pids never to adopt (this agent and its own children). */
  readonly exclude: ReadonlySet<number>;
}

/** The environment of `pid` as a map, or null when it cannot be read. */
function readEnviron(pid: number): Map<string, string> | null {
  try {
    const env = new Map<string, string>();
    for (const entry of readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0')) {
      const eq = entry.indexOf('=');
      if (eq > 0) env.set(entry.slice(0, eq), entry.slice(eq + 1));
    }
    return env;
  } catch {
    return null;
  }
}

/** The token of a heartbeat URL the supervisor gave (`udp://host:port/token`), or null. */
function tokenOf(url: string | undefined): string | null {
  if (url === undefined) return null;
  const slash = url.lastIndexOf('/');
  const token = slash >= 0 ? url.slice(slash + 1) : '';
  return token.length > 0 ? decodeURIComponent(token) : null;
}

/**
 * The record of the one live process an earlier agent of `q.dataDir` started as `q.id`, with
 * the configured command line and cwd; null when there is none or more than one.
 */
export function findOrphan(q: OrphanQuery, procDir = '/proc'): InstanceRecord | null {
  const found: InstanceRecord[] = [];
  let names: string[];
  try {
    names = readdirSync(procDir);
  } catch {
    return null;
  }
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (q.exclude.has(pid)) continue;
    const env = readEnviron(pid);
    if (env === null || env.get(PROCESS_ID_ENV) !== q.id || env.get(DATA_DIR_ENV) !== q.dataDir) continue;
    const st = readProcStat(pid);
    if (st === null || st.state === 'Z' || st.state === 'X') continue;
    const argv = readCmdline(pid);
    if (argv === null || argv.length !== q.argv.length || !argv.every((a, i) => a === q.argv[i])) continue;
    let cwd: string;
    try {
      cwd = readlinkSync(`/proc/${pid}/cwd`);
    } catch {
      continue;
    }
    if (cwd !== q.cwd) continue;
    found.push({ pid, startTime: st.startTime, argv, cwd, token: tokenOf(env.get(HEARTBEAT_ENV)) });
  }
  return found.length === 1 ? found[0]! : null;
}
