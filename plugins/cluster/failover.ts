/**
 * Failover as a recovery (#15 item 4): the orchestrator records a failover like any other
 * recovery — detected, healed, verified, with its RTO against the P1 target.
 *
 * - `primary-failure` (P1, subject `cluster:<name>`): the leader key this member last saw
 *   disappeared, or now names another leader (a new epoch), and no planned switchover said so.
 *   Once per lost leader (epoch). Every member that saw the leader go publishes it: each agent's
 *   journal holds the failover as that host lived it.
 * - `cluster-failover`, the healing action: `apply` waits (bounded: `options.timeoutMs`, default
 *   25 s, and the healer's own signal) for a new primary; `verify` looks for itself — it reads
 *   the leader key from etcd and asks the member it names for `GET /primary`, which answers 200
 *   only once that member's store serves the new epoch (roles.ts). The election itself needs no
 *   action: the action's work is to know, by observation, when the cluster has a primary again.
 * - `recovery_agent_failovers_total`: leaders lost without a switchover and replaced, as this
 *   member saw them.
 */
import type { Logger } from 'pino';
import type { Failure, FailureInput } from '../../core/contracts/Failure.js';
import type { HealingAction, HealingContext } from '../../core/contracts/HealingAction.js';
import { raError } from '../../core/errors.js';
import { sleep } from '../../core/sleep.js';
import type { LeaderInfo } from './member.js';

export const PRIMARY_FAILURE = 'primary-failure';
export const CLUSTER_FAILOVER = 'cluster-failover';
const kDefaultWaitMs = 25_000;
const kPollMs = 100;
/**
 * How long `verify` looks again after a failed look (an etcd call that did not get through, or a
 * leader not answering yet). Its look comes right after `apply` saw the new primary: on the old
 * primary cut off from etcd, that is right after the link came back, while its etcd client's
 * channel is still being made again — the first call failed "UNAVAILABLE: No connection
 * established" and the failover was escalated to a person (6 of seed 9's 50 primary-cut-etcd trials).
 */
const kVerifyMs = 3000;
/** How far before its detection a primary failure's start may be put (Failure.occurredAt). */
const kOccurredBoundMs = 60_000;

/** What failover detection reads of the member. */
export interface LeaderView {
  readonly member: string;
  knownLeader(): LeaderInfo | null;
  /** The other live members' keys (their `updatedAt`: when each last published). */
  knownPeers(): ReadonlyArray<{ readonly member: string; readonly updatedAt: number }>;
}

/** Publishes `primary-failure` when the leader goes, and counts failovers once a new one leads. */
export class FailoverWatch {
  private last: LeaderInfo | null = null;
  /** The epoch of the last leader whose loss was published. */
  private lost: number | null = null;
  private counted: number | null = null;
  /** When the last leader's member key was last seen updated (wall ms): the primary was alive then. */
  private leaderSeenAt: number | null = null;
  /** Epochs whose leader handed over in a planned switchover (no failure, no failover counted). */
  private readonly plannedEpochs = new Set<number>();
  /** The decision about the last lost leader (planned or not), when `planned` is asked. */
  private decided: Promise<void> = Promise.resolve();

  constructor(
    private readonly o: {
      cluster: string;
      view: LeaderView;
      publish(f: FailureInput): void;
      onFailover(from: LeaderInfo, to: LeaderInfo): void;
      /**
       * Whether `lost` handed over in a planned switchover (the switchover key, switchover.ts,
       * names it and its epoch): then neither a failure nor a failover. Absent: never planned.
       */
      planned?(lost: LeaderInfo): Promise<boolean>;
      log: Logger;
    },
  ) {}

  /** After each loop pass. */
  observe(): void {
    const now = this.o.view.knownLeader();
    const last = this.last;
    if (last !== null && (now === null || now.epoch !== last.epoch) && this.lost !== last.epoch) {
      this.lost = last.epoch;
      // leaderLastSeenAt: the fault came after it, so the failover took at most (now − it) + the RTO.
      const evidence = { cluster: this.o.cluster, observer: this.o.view.member, leader: last.member, epoch: last.epoch, newLeader: now?.member ?? null, newEpoch: now?.epoch ?? null, leaderLastSeenAt: this.leaderSeenAt };
      const publish = () => {
        this.o.log.error(evidence, now === null ? 'cluster: the leader key is gone: the primary failed' : `cluster: the leader key passed to ${now.member} without a switchover: the primary failed`);
        // The RTO counts from the leader's last sign of life (its member key's last update), not
        // from this detection a lease later: the fault came after it. A stamp far off (another
        // host's clock) is not used.
        const seen = evidence.leaderLastSeenAt;
        const occurredAt = seen !== null && Date.now() - seen >= 0 && Date.now() - seen < kOccurredBoundMs ? seen : undefined;
        this.o.publish({ kind: PRIMARY_FAILURE, priority: 'P1', subject: `cluster:${this.o.cluster}`, evidence, occurredAt, fingerprint: `${PRIMARY_FAILURE}:${this.o.cluster}:${last.epoch}` });
      };
      if (!this.o.planned) publish();
      else {
        this.decided = this.o.planned(last).then(
          (planned) => {
            if (!planned) return publish();
            this.plannedEpochs.add(last.epoch);
            this.o.log.info(evidence, `cluster: ${last.member} handed over in a planned switchover`);
          },
          () => publish(), // cannot tell: a failure is the safe report
        );
      }
    }
    if (now !== null) {
      if (last !== null && now.epoch !== last.epoch && this.lost === last.epoch && this.counted !== now.epoch) {
        this.counted = now.epoch;
        const from = last;
        if (!this.o.planned) this.o.onFailover(from, now);
        else void this.decided.then(() => (this.plannedEpochs.has(from.epoch) ? undefined : this.o.onFailover(from, now)));
      }
      if (now.epoch !== last?.epoch) this.leaderSeenAt = null;
      this.last = now;
      const key = this.o.view.knownPeers().find((p) => p.member === now.member);
      if (key) this.leaderSeenAt = Math.max(this.leaderSeenAt ?? 0, key.updatedAt);
    }
  }
}

/** The healing action `cluster-failover` for one cluster. */
export function failoverAction(o: { cluster: string; fetchLeader(): Promise<LeaderInfo | null> }): HealingAction {
  const lostEpoch = (f: Failure): number => (typeof f.evidence.epoch === 'number' ? f.evidence.epoch : 0);
  /** The leader key now, if it names a leader newer than the one lost whose /primary answers 200. */
  const newPrimary = async (f: Failure): Promise<{ leader: LeaderInfo | null; why: string | null }> => {
    const leader = await o.fetchLeader();
    if (leader === null) return { leader, why: 'no leader key' };
    if (leader.epoch <= lostEpoch(f)) return { leader, why: `the leader key still names epoch ${leader.epoch}` };
    if (leader.httpAddress === null) return { leader, why: `leader ${leader.member} advertises no HTTP address` };
    try {
      const res = await fetch(`http://${leader.httpAddress}/primary`, { signal: AbortSignal.timeout(1000) });
      await res.body?.cancel();
      return { leader, why: res.status === 200 ? null : `${leader.member}'s /primary answers ${res.status}` };
    } catch (err) {
      return { leader, why: `${leader.member}'s /primary does not answer (${(err as Error).message})` };
    }
  };
  return {
    id: CLUSTER_FAILOVER,
    canHandle: (f) => f.kind === PRIMARY_FAILURE && f.subject === `cluster:${o.cluster}`,
    async apply(f: Failure, ctx: HealingContext) {
      const waitMs = typeof ctx.options.timeoutMs === 'number' ? ctx.options.timeoutMs : kDefaultWaitMs;
      const t0 = Date.now();
      let why = 'not looked yet';
      for (;;) {
        if (ctx.signal.aborted) throw raError('RA_ERR_CLUSTER_FAILOVER', `no new primary yet (${why}) when the action was stopped`);
        try {
          const seen = await newPrimary(f);
          if (seen.why === null && seen.leader !== null) {
            return { summary: `${seen.leader.member} is the primary of epoch ${seen.leader.epoch} after ${Date.now() - t0} ms`, details: { leader: seen.leader.member, epoch: seen.leader.epoch, lostEpoch: lostEpoch(f) } };
          }
          why = seen.why ?? why;
        } catch (err) {
          why = (err as Error).message;
        }
        if (Date.now() - t0 > waitMs) {
          throw raError('RA_ERR_CLUSTER_FAILOVER', `no new primary within ${waitMs} ms (${why}); GET /cluster shows each member's eligibility`, { details: { lostEpoch: lostEpoch(f), waitMs } });
        }
        await sleep(kPollMs);
      }
    },
    async verify(f: Failure, ctx: HealingContext) {
      const t0 = Date.now();
      for (;;) {
        let failed: unknown = null;
        try {
          if ((await newPrimary(f)).why === null) return true;
        } catch (err) {
          failed = err;
        }
        if (Date.now() - t0 >= kVerifyMs || ctx.signal.aborted) {
          if (failed !== null) throw failed;
          return false;
        }
        await sleep(kPollMs, ctx.signal).catch(() => undefined);
      }
    },
  };
}
