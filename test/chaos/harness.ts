/**
 * The chaos harness (issue #17): per trial, a real agent (agent.ts) supervising a writer that
 * records every acknowledged commit (chaosWriter.ts); one fault injected for real by its family
 * (faults/); the agent's report of the recovery awaited on its HTTP API; then the workload
 * stopped and the history checked with the crash harness's model (history.ts), every page
 * checked as the agent left it (verifyPage, what `recovery-agent scan` checks), the snapshots and
 * the WAL archive verified (what `recovery-agent snapshot verify` runs),
 * and the agent's recorded RTO compared with this process's monotonic clock.
 *
 * A trial is a function of (seed, trial number, kind): its PRNG is seeded from the first two, so
 * `npm run chaos -- --seed S --trial N --kinds K` replays it (the command is in every result).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describeError } from '../../core/errors.js';
import type { RecordedFailure as Failure } from '../../core/orchestrator/orchestrator.js';
import type { RecoveryRecord } from '../../core/orchestrator/journal.js';
import { escalatedNow } from '../../core/orchestrator/stats.js';
import { PageStore } from '../../plugins/pagestore/pageStore.js';
import { verifySnapshots } from '../../plugins/snapshot-manager/verify.js';
import { walArchiver } from '../../plugins/snapshot-manager/walArchive.js';
import { verifyPage } from '../../plugins/pagestore/format.js';
import { observeStore } from '../crash/harness.js';
import { diskPage } from '../helpers/pageFile.js';
import { Prng } from '../crash/pattern.js';
import { pagestore } from '../helpers/engine.js';
import { AgentUnderTest, type AgentPaths } from './agent.js';
import { procState } from './faults/signals.js';
import { archivedSegments, snapshotChunks } from './faults/files.js';
import { SEED_TARGETS, type AgentExtras, type FaultContext, type FaultFamily, type FaultKind, type Injected, type Prepared } from './faults/types.js';
import { judgeHistory, readRecord } from './history.js';
import { chaosStoreOptions, CHAOS_PAGE_SIZE } from './protocol.js';

/** How far the agent's RTO may be from the harness's measure of the same span: two polls, HTTP, 5 %. */
export const RTO_TOLERANCE = { fixedMs: 250, relative: 0.05 } as const;
const POLL_MS = 25;

export interface TrialOptions {
  seed: number;
  trial: number;
  family: FaultFamily;
  kind: FaultKind;
  /** Why the family cannot be injected here (its probe's answer), or null. */
  unsupported: string | null;
  /** How long to wait for the agent's report of the recovery. */
  recoveryTimeoutMs: number;
  pages?: number;
  keep?: boolean;
  log?: (line: string) => void;
  /**
   * A mixed schedule (schedule.ts): the fault hits this already running agent, store and writer
   * instead of a fresh one, and the trial leaves them running. Its kind must need no `prepare` and
   * no agent extras. The store's history is then judged by the schedule, after each fault as far
   * as the writer's restarts settle it, and in full when the schedule stops the agent.
   */
  session?: Session;
}

/** One agent, store and writer that a schedule's faults hit back to back. */
export interface Session {
  readonly dir: string;
  readonly paths: AgentPaths;
  readonly agent: AgentUnderTest;
}

export interface TrialResult {
  kind: string;
  family: string;
  seed: number;
  trial: number;
  replay: string;
  status: 'passed' | 'failed' | 'unsupported';
  injected: string | null;
  /** Fault → the agent's detection (its failure's detectedAt against the wall clock at injection). */
  detectionMs: number | null;
  /** The agent's recorded RTO (detection → verified fix). */
  agentRtoMs: number | null;
  /** Fault → recovery seen by the harness (monotonic). For agent kinds: the agent answering again, the application committing. */
  harnessRtoMs: number | null;
  /** The harness's measure of the agent's span: failure first seen → recovery first seen (monotonic). */
  harnessSpanMs: number | null;
  /**
   * Kinds with a hold (`holdMs`): the heal (space back, the disk working, I/O fast again) → the
   * application committing again (`degraded` kinds: at its pre-fault rate again). Null otherwise.
   */
  healToCommitMs: number | null;
  rtoAgrees: boolean | null;
  targetMs: number;
  /** The most urgent priority the agent gave the fault's failure(s) (the expected one's, if any); null when it reported none. */
  priority: string | null;
  outcome: string | null;
  failures: string[];
  escalations: number;
  acked: number;
  ackedLost: number;
  pagesVerified: boolean;
  snapshotsVerified: boolean;
  agentCrashes: number;
  /** Invariants broken (history, pages): exit non-zero. */
  violations: string[];
  /** The agent did not do its part (no detection, not recovered, RTO disagrees…). */
  problems: string[];
  dir: string | null;
  /** The trial's own wall time, set-up and checks included. */
  wallMs: number;
}

/** The most urgent of `priorities` ('P0' before 'P1' …), null for none. */
export function mostUrgent(priorities: ReadonlyArray<string | null>): string | null {
  return priorities.filter((p): p is string => p !== null).sort()[0] ?? null;
}

/** The trial's PRNG seed: one per (seed, trial). */
export function trialSeed(seed: number, trial: number): number {
  return (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(trial + 1, 0x85ebca6b)) >>> 0;
}

export function replayCommand(seed: number, trial: number, kind: string): string {
  return `npm run chaos -- --seed ${seed} --trial ${trial} --kinds ${kind}`;
}

const mono = (): number => Number(process.hrtime.bigint()) / 1e6;

function alive(pid: number | null): boolean {
  if (pid === null) return false;
  const s = procState(pid);
  return s !== null && s !== 'Z';
}

/** Counts of acknowledgements in the record and the writer's current pid. */
function recordState(file: string): { acks: number; pid: number | null; opened: number } {
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const acks = text.match(/^\{"t":"ack"/gm)?.length ?? 0;
  const opened = [...text.matchAll(/^\{"t":"opened","runId":\d+,"pid":(\d+)/gm)];
  const last = opened.pop();
  return { acks, pid: last ? Number(last[1]) : null, opened: opened.length + (last ? 1 : 0) };
}

async function until<T>(ms: number, fn: () => Promise<T | undefined> | T | undefined): Promise<T | undefined> {
  const end = mono() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (mono() > end) return undefined;
    await sleep(POLL_MS);
  }
}

/**
 * Whether a failure concerns the trial's store or application. The host's own health
 * (`health-degraded` / `health-critical` on `host`: a machine shared with other work) is listed
 * in the result but not judged: no rule heals it, and no fault of the trial caused it.
 */
function isOurs(f: { subject: string }): boolean {
  return f.subject === 'store:s' || f.subject === 'process:app';
}

/**
 * The recovery that answered failure `f`: its own, or — when the orchestrator folded `f` into an
 * open failure with the same fingerprint (a duplicate) — that one's, if it ended after `f` came.
 * A recovery retried (it failed while the fault held) has a record per attempt: the last one not
 * followed by a retry says how it ended; while a retry is pending there is no answer yet.
 */
function recoveryOf(f: Failure, recoveries: ReadonlyMap<string, RecoveryRecord>): RecoveryRecord | null {
  const all = [...recoveries.values()].filter((x) => x.retry === undefined);
  const last = (xs: RecoveryRecord[]) => xs.sort((a, b) => a.finishedAt - b.finishedAt).at(-1);
  return last(all.filter((x) => x.failureId === f.id)) ?? last(all.filter((x) => x.fingerprint === f.fingerprint && x.detectedAt <= f.detectedAt && x.finishedAt >= f.detectedAt)) ?? null;
}

export async function runTrial(o: TrialOptions): Promise<TrialResult> {
  const say = o.log ?? (() => undefined);
  const begun = mono();
  const log = (line: string): void => say(`[${((mono() - begun) / 1000).toFixed(2)} s] ${line}`);
  const target = SEED_TARGETS[o.kind.target];
  const r: TrialResult = {
    kind: o.kind.name, family: o.family.name, seed: o.seed, trial: o.trial, replay: replayCommand(o.seed, o.trial, o.kind.name),
    status: 'failed', injected: null, detectionMs: null, agentRtoMs: null, harnessRtoMs: null, harnessSpanMs: null, healToCommitMs: null, rtoAgrees: null,
    targetMs: target.ms, priority: null, outcome: null, failures: [], escalations: 0, acked: 0, ackedLost: 0, pagesVerified: false, snapshotsVerified: false,
    agentCrashes: 0, violations: [], problems: [], dir: null, wallMs: 0,
  };
  if (o.unsupported !== null) {
    r.status = 'unsupported';
    r.problems.push(o.unsupported);
    return r;
  }
  const started = mono();
  const rng = new Prng(trialSeed(o.seed, o.trial));
  const shared = o.session ?? null;
  if (shared && (o.family.prepare || o.kind.agent)) throw new Error(`${o.kind.name} shapes its own agent or store: it cannot run in a mixed schedule`);
  const dir = shared?.dir ?? mkdtempSync(path.join(os.tmpdir(), `ra-chaos-${o.kind.name}-`));
  let prepared: Prepared = {};
  try {
    prepared = o.family.prepare ? await o.family.prepare(o.kind, dir) : {};
  } catch (err) {
    r.problems.push(`harness: preparing ${o.kind.name}: ${describeError(err)}`);
    r.dir = dir;
    return r;
  }
  const agent = shared?.agent ?? (await newAgent(dir, o.pages ?? 64, rng.u32(), prepared, o.kind.agent?.(dir)));
  const paths = agent.p;
  const pages = paths.pages;
  const cold = paths.cold;
  const crashesBefore = agent.unexpectedExits.length;
  const acksAtStart = recordState(paths.record).acks;
  const ctx: FaultContext = {
    prepared,
    store: paths.store, snapshots: paths.snapshots, record: paths.record, pageSize: CHAOS_PAGE_SIZE, pageCount: pages, coldPages: { from: pages - cold, to: pages - 1 }, rng, log,
    agentPid: () => agent.pid,
    appPid: () => {
      const pid = recordState(paths.record).pid;
      return alive(pid) ? pid : null;
    },
  };
  let injected: Injected | null = null;
  let healed = false;
  try {
    if (!shared) agent.start();
    // ---- warm-up: the writer committing, the agent answering, what the kind needs in place
    const ready = await until(30_000, async () => {
      const s = recordState(paths.record);
      if (s.acks < 20 || ctx.appPid() === null) return undefined;
      if ((await agent.get('/status')) === null) return undefined;
      if (o.kind.needs?.snapshot && snapshotChunks(paths.snapshots).length === 0) return undefined;
      if (o.kind.needs?.archivedSegment && archivedSegments(paths.snapshots).length === 0) return undefined;
      return true;
    });
    if (!ready) throw new Error(`warm-up: no writer committing${o.kind.needs ? ' or no snapshot / archived segment' : ''} within 30 s (${agent.unexpectedExits.join('; ') || 'agent running'})`);
    log('warm');
    await sleep(rng.int(100, 800));
    // A writer the agent restarted meanwhile (a false hang under load) must be up again first.
    if ((await until(10_000, () => ctx.appPid() ?? undefined)) === undefined) throw new Error('warm-up: no live writer to inject into');
    const seenFailures = new Set(((await agent.get<{ failures: Failure[] }>('/failures?limit=500'))?.body.failures ?? []).map((f) => f.id));
    const seenRecoveries = new Set(((await agent.get<{ recoveries: RecoveryRecord[] }>('/recoveries?limit=500'))?.body.recoveries ?? []).map((x) => x.id));

    // ---- the fault
    const killsAgent = o.kind.name === 'agent-sigkill' || o.kind.name === 'both-sigkill';
    if (killsAgent) agent.expectEnd();
    // The commit rate before the fault (acks per second over a second): what `degraded` kinds must get back to.
    let normalRate = 0;
    if (o.kind.expects.type === 'degraded') {
      const [a0, m0] = [recordState(paths.record).acks, mono()];
      await sleep(1000);
      normalRate = ((recordState(paths.record).acks - a0) * 1000) / (mono() - m0);
    }
    const acksBefore = recordState(paths.record).acks;
    const faultWall = Date.now();
    const t0 = mono();
    injected = await o.family.inject(o.kind, ctx);
    r.injected = injected.what;
    const injectedAt = mono();
    log(`trial ${o.trial} ${o.kind.name}: ${injected.what}`);
    const holdUntil = o.kind.holdMs ? t0 + o.kind.holdMs(rng) : null;

    // ---- waiting for the agent's answer
    const firstSeen = new Map<string, number>();
    const newFailures = new Map<string, Failure>();
    const newRecoveries = new Map<string, RecoveryRecord>();
    let restarted = false;
    let answeringSince: number | null = null;
    let acksAtAnswer = 0;
    let recoveredAt: number | null = null;
    let expected: Failure | null = null;
    let recovery: RecoveryRecord | null = null;
    let healedAt: number | null = null;
    let acksAtHeal = 0;
    const rateSamples: Array<{ at: number; acks: number }> = [];
    const deadline = t0 + o.recoveryTimeoutMs;
    while (mono() < deadline) {
      if (holdUntil !== null && !healed && mono() >= holdUntil) {
        await o.family.heal(o.kind, ctx, injected);
        healed = true;
        healedAt = mono();
        acksAtHeal = recordState(paths.record).acks;
        log('healed');
        if (o.kind.expects.type === 'degraded') {
          // The fault must have slowed the application, or the trial proves nothing.
          const heldRate = ((acksAtHeal - acksBefore) * 1000) / (healedAt - t0);
          log(`commit rate ${normalRate.toFixed(0)}/s before the fault, ${heldRate.toFixed(0)}/s under it`);
          if (heldRate >= normalRate / 2) r.problems.push(`the fault did not slow the application: ${heldRate.toFixed(0)} commits/s under it, ${normalRate.toFixed(0)}/s before`);
        }
      }
      if (healedAt !== null && r.healToCommitMs === null) {
        const acks = recordState(paths.record).acks;
        const at = mono();
        if (o.kind.expects.type !== 'degraded') {
          if (acks > acksAtHeal) r.healToCommitMs = Math.round(at - healedAt);
        } else {
          // Back to normal: the last half second's rate at least half the pre-fault rate.
          rateSamples.push({ at, acks });
          const from = rateSamples.find((x) => x.at >= at - 500 && x.at >= healedAt!);
          if (from && at - from.at >= 400 && ((acks - from.acks) * 1000) / (at - from.at) >= normalRate / 2) r.healToCommitMs = Math.round(at - healedAt);
        }
      }
      if (agent.pid === null) {
        // Killed by the fault (systemd would start it again) or crashed (counted): start it.
        if (!(killsAgent && !restarted)) r.agentCrashes++;
        restarted = true;
        answeringSince = null;
        agent.start();
      }
      const [fs, rs] = await Promise.all([agent.get<{ failures: Failure[] }>('/failures?limit=500'), agent.get<{ recoveries: RecoveryRecord[] }>('/recoveries?limit=500')]);
      const now = mono();
      if (fs && rs) {
        if (answeringSince === null && (holdUntil === null || healed)) {
          answeringSince = now;
          acksAtAnswer = recordState(paths.record).acks;
        }
        for (const f of fs.body.failures) {
          if (seenFailures.has(f.id) || newFailures.has(f.id)) continue;
          newFailures.set(f.id, f);
          firstSeen.set(f.id, now);
        }
        for (const x of rs.body.recoveries) {
          if (seenRecoveries.has(x.id) || newRecoveries.has(x.id)) continue;
          newRecoveries.set(x.id, x);
          firstSeen.set(x.id, now);
        }
      }
      const unfinished = [...newFailures.values()].filter((f) => isOurs(f) && f.state !== 'cleared' && recoveryOf(f, newRecoveries) === null);
      if (o.kind.expects.type === 'failure') {
        const kinds = o.kind.expects.kinds;
        expected ??= [...newFailures.values()].find((f) => kinds.includes(f.kind)) ?? null;
        recovery = expected ? recoveryOf(expected, newRecoveries) : null;
        // A held fault (space back, the disk working again): also the application committing after the heal.
        if (recovery && (holdUntil === null || r.healToCommitMs !== null)) {
          recoveredAt = firstSeen.get(recovery.id)!;
          break;
        }
      } else if (o.kind.expects.type === 'none') {
        // Nothing to wait for but the quiet period: the workload must go on all along.
        if (now - injectedAt >= o.kind.expects.quietMs && answeringSince !== null) {
          recoveredAt = now;
          break;
        }
      } else if (o.kind.expects.type === 'degraded') {
        if (r.healToCommitMs !== null) {
          recoveredAt = now;
          break;
        }
      } else if (answeringSince !== null && recordState(paths.record).acks > acksAtAnswer && ctx.appPid() !== null && unfinished.length === 0) {
        recoveredAt = now;
        break;
      }
      await sleep(POLL_MS);
    }
    if (injected && !healed && holdUntil !== null) {
      await o.family.heal(o.kind, ctx, injected);
      healed = true;
    }
    // The loop may break on a commit that came in after this iteration's heal-to-commit reading
    // (the break re-reads the record after the HTTP polls): look once more before calling it missing.
    if (healedAt !== null && r.healToCommitMs === null && o.kind.expects.type !== 'degraded' && recordState(paths.record).acks > acksAtHeal) {
      r.healToCommitMs = Math.round(mono() - healedAt);
    }
    // A recovery recorded, but the application not committing after the heal by the deadline.
    if (recovery && recoveredAt === null) recoveredAt = firstSeen.get(recovery.id)!;
    if (holdUntil !== null && r.healToCommitMs === null && o.kind.expects.type !== 'degraded') r.problems.push(`the application did not commit again within ${((deadline - (healedAt ?? deadline)) / 1000).toFixed(1)} s of the heal`);

    r.failures = [...newFailures.values()].map((f) => `${f.kind} ${f.subject}${f.state === 'cleared' ? ' (cleared)' : ''}`);
    r.priority = expected?.priority ?? mostUrgent([...newFailures.values()].filter(isOurs).map((f) => f.priority));
    r.escalations = [...newRecoveries.values()].filter((x) => escalatedNow(x)).length;
    // An attempt that failed while the fault held and was retried is the agent's answer working, not a problem.
    for (const x of newRecoveries.values()) if (x.outcome !== 'recovered' && isOurs(x) && x.retry === undefined) r.problems.push(`recovery of ${x.kind} ${x.subject}: ${x.outcome}${x.escalated ? ', escalated' : ''}${x.reason ? `: ${x.reason}` : ''}`);
    if (o.kind.expects.type === 'degraded') {
      // Slow is not dead: a recovery of the store or the application is a false alarm (a storm, if several).
      for (const x of newRecoveries.values()) if (isOurs(x)) r.problems.push(`a false recovery of a slow but working ${x.subject}: ${x.kind} → ${x.outcome}`);
      if (recoveredAt === null) r.problems.push(`the commit rate was not back to half its pre-fault ${normalRate.toFixed(0)}/s within ${o.recoveryTimeoutMs / 1000} s of the fault`);
      else {
        r.outcome = 'recovered';
        r.harnessRtoMs = r.healToCommitMs;
      }
    } else if (o.kind.expects.type === 'failure') {
      if (!expected) {
        const { page, file } = (injected.state ?? {}) as { page?: number; file?: string };
        const still = page !== undefined
          ? `; page ${page} on disk ${verifyPage(diskPage(paths.store, page, CHAOS_PAGE_SIZE), page) === null ? 'verifies again (rewritten by its owner)' : 'still fails its check'}`
          : file !== undefined ? `; the damaged ${path.basename(file)} ${existsSync(file) ? 'is still there' : 'is gone (pruned or replaced)'}` : '';
        r.problems.push(`not detected: no ${o.kind.expects.kinds.join(' / ')} failure within ${o.recoveryTimeoutMs / 1000} s of the fault (failures seen: ${r.failures.join(', ') || 'none'})${still}`);
      }
      else {
        r.detectionMs = expected.detectedAt - faultWall;
        if (!recovery) r.problems.push(`${expected.kind} detected ${r.detectionMs} ms after the fault, but no recovery recorded within ${o.recoveryTimeoutMs / 1000} s`);
        else {
          r.outcome = recovery.outcome;
          r.agentRtoMs = recovery.rtoMs;
          r.harnessRtoMs = Math.round(recoveredAt! - t0);
          r.harnessSpanMs = Math.round(recoveredAt! - firstSeen.get(expected.id)!);
          const tol = RTO_TOLERANCE.fixedMs + RTO_TOLERANCE.relative * recovery.rtoMs;
          // The agent's RTO lies between what the harness saw from outside: at least the span from
          // seeing the failure to seeing its recovery (less the tolerance: the recovery may be
          // seen late), at most the fault to the recovery seen. Not |RTO − span| ≤ tolerance: a
          // failure seen late by a poll the busy agent answered late (a process being started)
          // shortens the span without the agent's figure being wrong.
          r.rtoAgrees = recovery.rtoMs >= r.harnessSpanMs - tol && recovery.rtoMs <= r.harnessRtoMs + tol;
          if (!r.rtoAgrees) r.problems.push(`the agent's RTO ${recovery.rtoMs} ms disagrees with the harness's clock: failure seen → recovery seen ${r.harnessSpanMs} ms, fault → recovery seen ${r.harnessRtoMs} ms (tolerance ${Math.round(tol)} ms)`);
        }
      }
    } else if (o.kind.expects.type === 'none') {
      const ours = [...newFailures.values()].filter(isOurs);
      if (ours.length > 0) r.problems.push(`spurious failure(s) reported for a fault the agent must ride out: ${ours.map((f) => `${f.kind} ${f.subject}${f.evidence ? ` ${JSON.stringify(f.evidence).slice(0, 300)}` : ''}`).join('; ')}`);
      if (recoveredAt === null) r.problems.push(`the agent did not answer within ${o.recoveryTimeoutMs / 1000} s of the fault`);
      const m = o.family.measure ? await o.family.measure(o.kind, ctx, injected) : { rtoMs: null, problems: [] };
      r.problems.push(...m.problems);
      r.harnessRtoMs = m.rtoMs;
      if (ours.length === 0 && recoveredAt !== null && m.problems.length === 0) r.outcome = 'recovered';
    } else {
      if (recoveredAt === null) r.problems.push(`the agent was not back (answering, application committing, every failure it reported recovered) within ${o.recoveryTimeoutMs / 1000} s`);
      else {
        r.harnessRtoMs = Math.round(recoveredAt - t0);
        r.outcome = 'recovered';
        const own = [...newRecoveries.values()];
        if (own.length > 0) r.agentRtoMs = Math.max(...own.map((x) => x.rtoMs));
      }
    }
    if (r.harnessRtoMs !== null && r.harnessRtoMs > r.targetMs) r.problems.push(`RTO ${r.harnessRtoMs} ms is over the seed's target for ${target.label} (${r.targetMs} ms)`);

    log(`answered: ${r.outcome ?? 'nothing'}`);
    // ---- the workload goes on after the recovery (a failed one is a problem already)
    if (recoveredAt !== null && r.outcome === 'recovered') {
      const acksNow = recordState(paths.record).acks;
      const resumed = await until(10_000, () => (recordState(paths.record).acks >= acksNow + 5 ? true : undefined));
      if (!resumed) r.problems.push('the application did not commit again within 10 s of the recovery');
    }
    if (recordState(paths.record).acks <= acksBefore) r.problems.push('no commit was acknowledged after the fault');
  } catch (err) {
    r.problems.push(`harness: ${describeError(err)}`);
  } finally {
    if (injected && !healed) await o.family.heal(o.kind, ctx, injected).catch(() => undefined);
    if (!shared) {
      const stopped = await stopAgent(agent);
      if (stopped) r.problems.push(stopped);
    }
    const crashes = agent.unexpectedExits.slice(crashesBefore);
    for (const e of crashes) r.problems.push(`agent crash: ${e}`);
    r.agentCrashes = Math.max(r.agentCrashes, crashes.length);
  }
  if (shared) {
    // The schedule judges the history (schedule.ts); what this fault left is the schedule's.
    r.acked = recordState(paths.record).acks - acksAtStart;
    r.status = r.problems.length === 0 ? 'passed' : 'failed';
    r.wallMs = Math.round(mono() - started);
    r.dir = dir;
    return r;
  }

  // ---- the history, the pages, the snapshots
  log('stopped');
  const checked = await checkStore(paths, o.kind.writerMayExit);
  r.pagesVerified = checked.pagesVerified;
  r.snapshotsVerified = checked.snapshotsVerified;
  r.acked = checked.acked;
  r.ackedLost = checked.ackedLost;
  r.violations.push(...checked.violations);
  r.problems.push(...checked.problems);
  log('history checked');
  r.status = r.violations.length === 0 && r.problems.length === 0 ? 'passed' : 'failed';
  const keepIn = r.status === 'passed' && !o.keep ? null : dir;
  try {
    prepared.cleanup?.(keepIn);
  } catch (err) {
    r.problems.push(`harness: cleaning up ${o.kind.name}: ${describeError(err)}`);
    r.status = 'failed';
  }
  r.wallMs = Math.round(mono() - started);
  if (r.status === 'passed' && !o.keep) rmSync(dir, { recursive: true, force: true });
  else r.dir = dir;
  return r;
}

/**
 * The checks of a stopped agent's store: every page as the agent left it (before this process
 * recovers anything), by the store's own check; the writer's whole history against the store
 * recovered and closed; the snapshots and the WAL archive. `writerMayExit`: the writer's fatal
 * errors that are its right answer to the fault (see FaultKind).
 */
export async function checkStore(paths: AgentPaths, writerMayExit?: RegExp): Promise<{ pagesVerified: boolean; snapshotsVerified: boolean; acked: number; ackedLost: number; violations: string[]; problems: string[] }> {
  const c = { pagesVerified: false, snapshotsVerified: false, acked: 0, ackedLost: 0, violations: [] as string[], problems: [] as string[] };
  try {
    const left = await observeStore(paths.store);
    const bad = left.pages.filter((p) => p.fault !== null);
    c.pagesVerified = bad.length === 0;
    if (!c.pagesVerified) c.violations.push(`as the agent left the store, ${bad.length} page(s) fail their check: ${bad.slice(0, 5).map((p) => `page ${p.pageId} (${p.fault})`).join(', ')}`);
    await (await PageStore.open(paths.store, { ...chaosStoreOptions(paths.pages), archiver: walArchiver(pagestore, paths.snapshots), controlSocket: false })).close();
    const verdict = judgeHistory(readRecord(paths.record), await observeStore(paths.store));
    c.acked = verdict.acked;
    c.ackedLost = verdict.violations.filter((v) => v.includes('an acknowledged commit is lost')).length;
    c.violations.push(...verdict.violations);
    for (const f of verdict.fatal) if (!writerMayExit?.test(f)) c.problems.push(`writer: ${f.split('\n')[0]}`);
    const verify = await verifySnapshots(pagestore, paths.snapshots);
    c.snapshotsVerified = verify.problems.length === 0;
    if (!c.snapshotsVerified) c.problems.push(`snapshot verify: ${verify.problems.slice(0, 3).map((p) => `${p.where}${p.file ? ` ${p.file}` : ''}: ${p.problem}`).join('; ')}`);
  } catch (err) {
    c.violations.push(`checking the history: ${describeError(err)}`);
  }
  return c;
}

/** A trial's agent (not started): its store created in `dir` (or where `prepared` puts it), an empty record. */
export async function newAgent(dir: string, pages: number, seed: number, prepared: Prepared = {}, extras?: AgentExtras): Promise<AgentUnderTest> {
  const paths: AgentPaths = { dir, store: prepared.store ?? path.join(dir, 'store'), snapshots: path.join(dir, 'snapshots'), record: path.join(dir, 'record.jsonl'), pages, cold: Math.floor(pages / 4), seed };
  writeFileSync(paths.record, '');
  await (await PageStore.open(paths.store, { create: true, ...chaosStoreOptions(pages), archiver: walArchiver(pagestore, paths.snapshots), controlSocket: false })).close();
  return AgentUnderTest.create(paths, extras, prepared.appEnv);
}

/** Stops the agent (SIGTERM; it stops its application first); what went wrong, or null. */
export async function stopAgent(agent: AgentUnderTest): Promise<string | null> {
  const app = recordState(agent.p.record).pid;
  const problems: string[] = [];
  if (!(await agent.stop())) problems.push('the agent did not stop within 20 s of SIGTERM');
  if (app !== null && alive(app)) {
    problems.push(`the application (pid ${app}) outlived the agent's stop`);
    process.kill(app, 'SIGKILL');
    await until(5000, () => (alive(app) ? undefined : true));
  }
  return problems.length ? problems.join('; ') : null;
}

/**
 * The invariants every chaos trial must keep, whatever its kind (the CI tests assert them):
 * nothing of the history broken, no acknowledged commit lost, the workload committing at all,
 * the agent never crashing. Returns the explanation to use in further assertions.
 */
export function assertInvariants(r: TrialResult): string {
  const why = `${r.kind}: ${[...r.violations, ...r.problems].slice(0, 6).join(' | ')}\nreplay: ${r.replay} (kept: ${r.dir})`;
  assert.deepEqual(r.violations, [], why);
  assert.equal(r.ackedLost, 0, why);
  assert.ok(r.acked > 0, `${r.kind}: no commit acknowledged at all`);
  assert.equal(r.agentCrashes, 0, why);
  return why;
}
