/**
 * Judging the writer's history with the crash harness's model (test/crash/harness.ts
 * `CrashModel`, `observeStore`): no acknowledged commit missing, nothing uncommitted visible,
 * every in-doubt transaction all or nothing, every page verifying.
 *
 * The model's in-doubt rule ("a later commit-req on one of its pages proves it durable") holds
 * within one run of a writer (its page locks), not across a restart. So the record is judged run
 * by run: each `opened` line (what every page held after that run's recovery, read by the writer
 * itself) settles the runs before it, as the crash harness settles each iteration; the store as
 * the harness finds it at the end, recovered and closed, settles the last run.
 */
import { readFileSync } from 'node:fs';
import { CrashModel, type StoreObservation } from '../crash/harness.js';
import type { ChaosMessage, OpenedMessage } from './protocol.js';

export interface HistoryVerdict {
  violations: string[];
  runs: number;
  acked: number;
  aborted: number;
  /** In-doubt transactions (commit requested, never acknowledged) judged committed / rolled back. */
  inDoubtCommitted: number;
  inDoubtRolledBack: number;
  fatal: string[];
}

export function readRecord(file: string): ChaosMessage[] {
  const out: ChaosMessage[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line) continue;
    try {
      out.push(JSON.parse(line) as ChaosMessage);
    } catch {
      // Only the last line can be torn (a write cut by SIGKILL): it acknowledged nothing.
    }
  }
  return out;
}

/** The observation of the store an `opened` line gives: payload stamps only (the final check verifies pages). */
function openedObservation(o: OpenedMessage, pageCount: number, pageSize: number): StoreObservation {
  return {
    pageSize,
    pageCount,
    checkpointLsn: Number.MAX_SAFE_INTEGER,
    fileBytes: pageCount * pageSize,
    walSegments: 0,
    walProblems: [],
    pages: o.stamps.map((stamp, pageId) => ({ pageId, fault: null, lsn: 0, stamp, detail: stamp === null ? 'mixed payload, as the writer read it' : '' })),
  };
}

/** Judges the whole record against the final observation of the store. */
export function judgeHistory(messages: readonly ChaosMessage[], final: StoreObservation): HistoryVerdict {
  return judge(messages, final, final);
}

/**
 * Judges the record of a writer still running (a mixed schedule, after each fault): the runs
 * up to its last `opened` line, each settled by the next run's opening (every restart of the
 * writer so far); the live run is left for the final `judgeHistory`.
 */
export function judgeRunsSoFar(messages: readonly ChaosMessage[], geometry: { pageCount: number; pageSize: number }): HistoryVerdict {
  const last = messages.findLastIndex((m) => m.t === 'opened');
  return judge(messages.slice(0, last + 1), null, geometry);
}

function judge(messages: readonly ChaosMessage[], final: StoreObservation | null, geometry: { pageCount: number; pageSize: number }): HistoryVerdict {
  const model = new CrashModel(geometry.pageCount);
  const v: HistoryVerdict = { violations: [], runs: 0, acked: 0, aborted: 0, inDoubtCommitted: 0, inDoubtRolledBack: 0, fatal: [] };
  const settle = (obs: StoreObservation, run: number, where: string) => {
    const r = model.check(obs);
    for (const x of r.violations) v.violations.push(`${where}: ${x}`);
    v.acked += r.acked;
    v.inDoubtCommitted += r.inDoubtVisible + r.inDoubtProvenBySuccessor;
    v.inDoubtRolledBack += r.inDoubtRolledBack;
    model.settle(r, obs, run);
  };
  let run = 0;
  for (const m of messages) {
    if (m.t === 'opened') {
      v.runs++;
      if (run > 0 || model.pendingCount > 0) settle(openedObservation(m, geometry.pageCount, geometry.pageSize), m.runId, `as run ${m.runId} opened the store`);
      run = m.runId;
      continue;
    }
    if (m.t === 'fatal') v.fatal.push(m.error);
    if (m.t === 'abort') v.aborted++;
    if (m.t === 'bad-read') v.violations.push(`run ${run}: ${m.detail}`);
    const problem = model.onMessage(m as Parameters<CrashModel['onMessage']>[0]);
    if (problem) v.violations.push(`run ${run}: ${problem}`);
  }
  if (final) settle(final, run, 'the store at the end');
  return v;
}
