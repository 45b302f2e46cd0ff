/**
 * The contract of a fault family for the chaos harness (test/chaos/harness.ts). One module per
 * family (signals.ts, bitFlips.ts, tornFiles.ts; later cluster, ENOSPC/EIO, clock, memory…), each
 * with `probe()` (can this machine inject it at all?), `inject()` (do it, for real, now) and
 * `heal()` (undo what can be undone once the trial is over, e.g. SIGCONT a stopped process).
 * The harness knows nothing of a kind beyond what its `FaultKind` declares.
 */
import type { Prng } from '../../crash/pattern.js';

/** The seed's failure types and their RTO targets (issue #17, ../shared/seed/). */
export const SEED_TARGETS = {
  'page-corruption': { label: 'single page corruption', ms: 10_000 },
  'instance-crash': { label: 'instance crash', ms: 120_000 },
  'disk-failure': { label: 'disk failure', ms: 30_000 },
  'memory-leak': { label: 'memory leak', ms: 60_000 },
  deadlock: { label: 'deadlock', ms: 1_000 },
  'primary-node-failure': { label: 'primary node failure', ms: 30_000 },
  'network-partition': { label: 'network partition', ms: 60_000 },
} as const;
export type SeedTarget = keyof typeof SEED_TARGETS;

/** What a trial may act on. Paths are absolute; pids are null when the process is not running. */
export interface FaultContext {
  /** The store directory (pages.db, wal/, control). */
  readonly store: string;
  /** The store's snapshot directory (snapshots/, wal/ archive). */
  readonly snapshots: string;
  /** The writer's record file (chaosWriter.ts): what it committed, and its own fault reports. */
  readonly record: string;
  readonly pageSize: number;
  readonly pageCount: number;
  /**
   * Pages the application writes rarely (the last ones): a page fault targets one of these, so
   * the damage is still on disk when a scrub comes by, not overwritten by the owner's next
   * checkpoint (which would be a correct heal, but by luck, not by the agent).
   */
  readonly coldPages: { readonly from: number; readonly to: number };
  agentPid(): number | null;
  appPid(): number | null;
  readonly rng: Prng;
  log(line: string): void;
  /** What the family's `prepare` set up for this trial ({} without one). */
  readonly prepared: Prepared;
}

/**
 * What a family sets up before the store is created and the agent started, when its fault needs
 * the environment shaped first: the store on a small filesystem the fault can fill, the
 * application under an LD_PRELOAD fault library. The smallest hook that serves: a store path and
 * the application's environment, nothing else of the agent's config.
 */
export interface Prepared {
  /** Where the trial's store lives instead of `<trial dir>/store` (a directory that does not exist yet). */
  readonly store?: string;
  /** Environment variables for the supervised application (the agent config's `processes[].env`). */
  readonly appEnv?: Readonly<Record<string, string>>;
  /** Family-private state for inject/heal. */
  readonly state?: unknown;
  /** Undoes the set-up once the trial is checked (unmounts); `keepIn` (a failed trial): copy what matters there first. */
  cleanup?(keepIn: string | null): void;
}

/** What an injection did, for the report and for `heal`. */
export interface Injected {
  /** One line: what was done to what (`bit 3 of byte 5120 of pages.db (page 1)`). */
  readonly what: string;
  /** Family-private state `heal` needs (pids stopped, …). */
  readonly state?: unknown;
}

export interface FaultKind {
  /** `app-sigkill`, `wal-live-bitflip`, … : the report's row. */
  readonly name: string;
  readonly description: string;
  readonly target: SeedTarget;
  /**
   * How the agent must answer. `failure`: it reports a failure of one of `kinds` and records it
   * recovered. `agent`: the agent itself was hit — the harness restarts a killed agent as systemd
   * would — and recovery is the agent answering again with the application committing; a failure
   * it reports meanwhile must still be recovered, not escalated.
   */
  readonly expects:
    | { readonly type: 'failure'; readonly kinds: readonly string[] }
    | { readonly type: 'agent' }
    /**
     * `none`: a fault the agent must ride out without a word — no failure of the store or the
     * application reported (a clock jump is no hang), the application committing all along; the
     * trial ends `quietMs` after `inject` returned. Its RTO, if any, is the family's `measure`.
     */
    | { readonly type: 'none'; readonly quietMs: number }
    /**
     * `degraded`: the fault slows the application without breaking anything — slow I/O. The
     * agent must not answer it with a recovery of the store or the application, slow is not dead;
     * recovery is the commit rate back to normal after the heal; needs `holdMs`.
     */
    | { readonly type: 'degraded' };
  /**
   * What the agent of this kind's trials runs with, besides the harness's config (trialDir: the
   * trial's directory): its environment (an LD_PRELOAD library), fields merged into the
   * supervised process's entry (`memoryLimit`) and a `health` section.
   */
  readonly agent?: (trialDir: string) => AgentExtras;
  /**
   * The writer's fatal errors (its record's `fatal` lines) that are its right answer to this
   * fault — a store whose log cannot be written refuses every commit and the writer exits, for
   * the agent to restart it — rather than a problem.
   */
  readonly writerMayExit?: RegExp;
  /** What must exist before the fault can be injected (an archived WAL segment, a snapshot). */
  readonly needs?: { readonly snapshot?: boolean; readonly archivedSegment?: boolean };
  /** Heal this long after the injection (a SIGSTOP held), else right after recovery or at the end. */
  readonly holdMs?: (rng: Prng) => number;
}

export interface AgentExtras {
  readonly env?: Readonly<Record<string, string>>;
  readonly process?: Readonly<Record<string, unknown>>;
  readonly health?: Readonly<Record<string, unknown>>;
}

export interface FaultFamily {
  readonly name: string;
  readonly kinds: readonly FaultKind[];
  /** Null when this machine can inject the family's kinds, else why not (then each is `unsupported`). */
  probe(): Promise<string | null>;
  /** Shapes the trial's environment before its store is created (`trialDir` exists); see `Prepared`. */
  prepare?(kind: FaultKind, trialDir: string): Promise<Prepared>;
  inject(kind: FaultKind, ctx: FaultContext): Promise<Injected>;
  heal(kind: FaultKind, ctx: FaultContext, injected: Injected): Promise<void>;
  /**
   * For a kind the agent need not answer (`expects.type: 'none'`): the recovery time the family
   * measured itself (a deadlock victim's abort, recorded by the writer) and what went wrong.
   */
  measure?(kind: FaultKind, ctx: FaultContext, injected: Injected): Promise<{ rtoMs: number | null; problems: string[] }>;
}
