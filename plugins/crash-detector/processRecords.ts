/**
 * What the supervisor started, persisted under `agent.dataDir`, so that an agent that crashed
 * (kill -9, OOM) can adopt its still-running processes when it comes back instead of starting a
 * second instance of each — which would only crash-loop on "store is locked by process N".
 *
 * File: `<dataDir>/processes/instances.json`, `{ version, instances: { <id>: { pid, startTime,
 * argv, cwd, token } } }`, replaced by write-then-rename (a crash leaves the old or the new one, never
 * half of each). Written synchronously at every start and exit: the file is small and it must
 * name a child before anything else can happen to it. A record only counts when the pid is alive
 * with the same start time (field 22 of /proc/<pid>/stat: a recycled pid is another process)
 * and runs the same command line.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from '../../core/privateFiles.js';
import { readProcStat } from './procStats.js';

const VERSION = 1;

export interface InstanceRecord {
  readonly pid: number;
  /** Field 22 of /proc/<pid>/stat when it was started. */
  readonly startTime: string;
  /** What it was started as: the command, then its arguments (its /proc/<pid>/cmdline). */
  readonly argv: readonly string[];
  readonly cwd: string;
  /** The heartbeat token it was given (null: none, or a configured one): an adopted process keeps sending it. */
  readonly token: string | null;
}

/** The directory of the records and of the processes' output files. */
export function processesDir(dataDir: string): string {
  return path.join(dataDir, 'processes');
}

export class InstanceRecords {
  private readonly file: string;
  private readonly records = new Map<string, InstanceRecord>();
  /** Why the file could not be read, for the log; null when it was read or did not exist. */
  readonly loadError: string | null = null;

  constructor(readonly dir: string) {
    this.file = path.join(dir, 'instances.json');
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(this.file, 'utf8'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.loadError = `cannot read ${this.file}: ${(err as Error).message}`;
      return;
    }
    const r = raw as { version?: unknown; instances?: Record<string, unknown> } | null;
    if (r?.version !== VERSION || typeof r.instances !== 'object' || r.instances === null) {
      this.loadError = `${this.file} is not a process record of version ${VERSION}; ignored`;
      return;
    }
    for (const [id, v] of Object.entries(r.instances)) {
      const rec = v as Partial<InstanceRecord> | null;
      if (Number.isInteger(rec?.pid) && rec!.pid! > 0 && typeof rec!.startTime === 'string' && Array.isArray(rec!.argv) && rec!.argv.every((a) => typeof a === 'string') && typeof rec!.cwd === 'string') {
        this.records.set(id, { pid: rec!.pid!, startTime: rec!.startTime, argv: rec!.argv, cwd: rec!.cwd, token: typeof rec!.token === 'string' ? rec!.token : null });
      }
    }
  }

  get(id: string): InstanceRecord | undefined {
    return this.records.get(id);
  }

  set(id: string, record: InstanceRecord): void {
    this.records.set(id, record);
    this.save();
  }

  delete(id: string): void {
    if (this.records.delete(id)) this.save();
  }

  private save(): void {
    mkdirSync(this.dir, { recursive: true, mode: PRIVATE_DIR_MODE });
    const tmp = `${this.file}.tmp`;
    writeFileSync(tmp, JSON.stringify({ version: VERSION, instances: Object.fromEntries(this.records) }) + '\n', { mode: PRIVATE_FILE_MODE });
    renameSync(tmp, this.file);
  }
}

/** The command line of `pid` (argv, from /proc/<pid>/cmdline), or null when it cannot be read. */
export function readCmdline(pid: number): string[] | null {
  try {
    const raw = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return raw.endsWith('\0') ? raw.slice(0, -1).split('\0') : raw.split('\0');
  } catch {
    return null;
  }
}

/**
 * Whether the recorded instance still runs: `alive` (same pid, same start time, not a zombie,
 * same command line), `gone` (no such process, a zombie, or the pid now names a later process),
 * or `changed` (the same process by start time, but its command line is not the recorded one:
 * it exec'd something else, and is no longer what the agent started).
 */
export function checkRecord(rec: InstanceRecord): 'alive' | 'gone' | 'changed' {
  const st = readProcStat(rec.pid);
  if (st === null || st.startTime !== rec.startTime || st.state === 'Z' || st.state === 'X') return 'gone';
  const argv = readCmdline(rec.pid);
  if (argv === null) return 'gone';
  return argv.length === rec.argv.length && argv.every((a, i) => a === rec.argv[i]) ? 'alive' : 'changed';
}
