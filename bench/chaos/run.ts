/**
 * `npm run chaos`: the chaos harness (test/chaos/harness.ts) over every single-host fault kind
 * (test/chaos/faults/), and with `--cluster` the cluster kinds (test/chaos/faults/cluster.ts, on
 * one three-node cluster with etcd started once for the run: test/chaos/cluster/clusterChaos.ts),
 * seeded; prints a table per kind and writes bench/results/chaos.json.
 *
 *   npm run chaos -- [--seed N] [--trials N] [--kinds a,b] [--cluster] [--trial N] [--recovery-timeout-ms N] [--keep] [--merge]
 *   npm run chaos -- --schedule mixed [--seed N] [--length N] [--kinds a,b] [--cluster]
 *
 * `--schedule mixed`: one agent and workload for a seeded random sequence of kinds injected back
 * to back (test/chaos/schedule.ts), reported per kind as the trials are.
 *
 * Exit 0 when every trial passed; 1 when an invariant broke (an acknowledged commit missing,
 * uncommitted data visible, a page that fails its check, the agent crashing); 2 when trials
 * failed otherwise (a fault not detected or not recovered, an RTO the harness's clock
 * contradicts). `unsupported` kinds (the machine cannot inject them) never pass and never fail
 * the run; they are listed.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ClusterChaos } from '../../test/chaos/cluster/clusterChaos.js';
import { CLUSTER_FAMILY, CLUSTER_KINDS, probeCluster, type ClusterFaultKind } from '../../test/chaos/faults/cluster.js';
import { allKinds, FAMILIES } from '../../test/chaos/faults/index.js';
import { SEED_TARGETS, type FaultFamily, type FaultKind } from '../../test/chaos/faults/types.js';
import { RTO_TOLERANCE, runTrial, type TrialResult } from '../../test/chaos/harness.js';
import { runSchedule } from '../../test/chaos/schedule.js';
import { formatTable, summarize, URGENT_P95_GOAL_MS } from '../../test/chaos/summary.js';
import { numArg, strArg } from '../lib/args.js';
import { repoRoot } from '../lib/report.js';

/** A kind of either sort: a single-host kind of its family, or a cluster kind. */
type Chosen = { family: FaultFamily; kind: FaultKind; cluster?: undefined } | { cluster: ClusterFaultKind; family?: undefined; kind: { name: string } };
const every: Chosen[] = [...allKinds(), ...CLUSTER_KINDS.map((k) => ({ cluster: k, kind: { name: k.name } }))];
const withCluster = process.argv.includes('--cluster');
if (process.argv.includes('--help')) {
  console.log(`npm run chaos -- [--seed N (1)] [--trials N per kind (1)] [--kinds K,K] [--cluster] [--trial N] [--recovery-timeout-ms N (30000)] [--keep] [--merge] [--out FILE]

Per trial: a real agent (bin/recovery-agent.js run) supervising a writer that records every
acknowledged commit; one fault injected for real; the agent's recovery awaited on /failures and
/recoveries; the writer stopped; the history checked (crash harness model: no acknowledged commit
lost, nothing uncommitted visible), every page scanned, the snapshots verified, and the agent's
RTO compared with this process's monotonic clock (tolerance ${RTO_TOLERANCE.fixedMs} ms + ${RTO_TOLERANCE.relative * 100} %).

Kinds:
${every.map((c) => `  ${c.kind.name.padEnd(22)} ${(c.family?.name ?? CLUSTER_FAMILY).padEnd(11)} ${c.cluster?.description ?? c.family!.kinds.find((k) => k.name === c.kind.name)!.description}`).join('\n')}

The cluster kinds run with --cluster (or when --kinds names them): one cluster (a 3-member etcd,
three agents in sync mode, every link through a fault proxy) started once for the run, the trials
back to back on it, healed and settled between them; each checked with the failover checker (no
acknowledged commit lost where a store opened, no overlapping epochs). Needs etcd (etcd-server).

--trial N runs only trial N (with --kinds naming its kind): every failed trial prints the command
that replays it. --keep keeps every trial's directory (agent logs, record, store); a failed
trial's is always kept. Results: bench/results/chaos.json, a schedule's chaos-mixed.json (--out to write elsewhere).
--merge keeps the report's trials of the kinds not run now (a long run in batches of kinds).
--schedule mixed: one agent, store and writer for a seeded random sequence of --length N
(default 12) faults back to back while the workload runs, drawn from the kinds that need no
set-up of their own (--kinds to choose; with --cluster also the cluster kinds, on one cluster);
checked after each fault (its answer, the history of every writer run so far) and in full at the
end. The whole schedule replays from its seed and length.

Exit: 0 all passed, 1 an invariant broke, 2 trials failed otherwise.`);
  process.exit(0);
}

const seed = numArg('seed', 1);
const trials = numArg('trials', 1);
const recoveryTimeoutMs = numArg('recovery-timeout-ms', 30_000);
const keep = process.argv.includes('--keep');
const names = (strArg('kinds') ?? every.filter((k) => withCluster || !k.cluster).map((k) => k.kind.name).join(',')).split(',');
for (const n of names) if (!every.some((k) => k.kind.name === n)) throw new Error(`unknown kind ${n}: one of ${every.map((k) => k.kind.name).join(', ')}`);
const chosen = names.map((n) => every.find((k) => k.kind.name === n)!);
const only = strArg('trial') === undefined ? null : Number(strArg('trial'));

const probes = new Map<string, string | null>();
for (const f of FAMILIES) probes.set(f.name, await f.probe());
if (chosen.some((c) => c.cluster)) probes.set(CLUSTER_FAMILY, await probeCluster());
for (const [f, why] of probes) if (why) console.log(`unsupported: ${f}: ${why}`);

const results: TrialResult[] = [];
const schedule = strArg('schedule');
if (schedule !== undefined && schedule !== 'mixed') throw new Error(`--schedule ${schedule}: the one schedule is mixed`);
const numbers = only !== null ? [only] : Array.from({ length: trials * chosen.length }, (_, i) => i);
const t0 = Date.now();
/** The run's cluster, started at its first cluster trial; its trials' results, for `close`. */
let cluster: ClusterChaos | null = null;
const clusterResults: TrialResult[] = [];
let leftOut: string[] = [];
if (schedule === 'mixed') {
  const report = await runSchedule({
    seed, length: numArg('length', 12), named: strArg('kinds') !== undefined, probes, recoveryTimeoutMs, keep, log: (l) => console.log(l),
    kinds: chosen.map((c) => (c.cluster ? { cluster: c.cluster } : { family: c.family, kind: c.kind })),
  });
  results.push(...report.results);
  leftOut = report.leftOut;
  for (const l of leftOut) console.log(`left out of the schedule: ${l}`);
}
for (const n of schedule === 'mixed' ? [] : numbers) {
  const c = chosen[n % chosen.length]!;
  const kind = c.kind;
  let r: TrialResult;
  if (c.cluster) {
    const why = probes.get(CLUSTER_FAMILY) ?? null;
    if (why === null && cluster === null) {
      console.log('  starting the cluster (3-member etcd, three agents)');
      cluster = await ClusterChaos.start();
    }
    r = cluster === null
      ? unsupportedCluster(c.cluster, n, why ?? 'the cluster did not start')
      : await cluster.trial({ seed, trial: n, kind: c.cluster, recoveryTimeoutMs, log: (l) => console.log(`  ${l}`) });
    clusterResults.push(r);
  } else {
    r = await runTrial({ seed, trial: n, family: c.family, kind: c.kind, unsupported: probes.get(c.family.name) ?? null, recoveryTimeoutMs, keep, log: (l) => console.log(`  ${l}`) });
  }
  results.push(r);
  const rto = r.harnessRtoMs === null ? '' : ` RTO ${r.harnessRtoMs} ms (agent ${r.agentRtoMs ?? '-'} ms, detected after ${r.detectionMs ?? '-'} ms${r.healToCommitMs === null ? '' : `, committing again ${r.healToCommitMs} ms after the heal`})`;
  console.log(`trial ${n} ${kind.name}: ${r.status.toUpperCase()}${rto}, ${r.acked} acked, ${r.ackedLost} lost (${(r.wallMs / 1000).toFixed(1)} s)`);
  if (r.status === 'failed') {
    for (const p of [...r.violations.slice(0, 10), ...r.problems]) console.log(`    ${p}`);
    console.log(`    replay: ${r.replay}    (kept: ${r.dir})`);
  }
}

if (cluster !== null) await cluster.close(clusterResults, keep);
const out = strArg('out') ?? path.join(repoRoot(), 'bench', 'results', schedule ? `chaos-${schedule}.json` : 'chaos.json');
const machine = { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, node: process.version, totalMemBytes: os.totalmem(), loadavg: os.loadavg() };
const batch = { seed, kinds: names, trialsPerKind: only !== null ? 1 : trials, wallS: Math.round((Date.now() - t0) / 1000), machine, at: new Date().toISOString() };
// --merge: the long run in batches of kinds (each trial replays from its own seed and number):
// the report's trials of the kinds run now are replaced, the other kinds' kept.
const earlier = process.argv.includes('--merge') && !schedule ? readEarlier(out) : { trials: [], batches: [] };
const all = [...earlier.trials.filter((t) => !names.includes(t.kind)), ...results];
const batches = [...earlier.batches.filter((b) => b.kinds.some((k) => !names.includes(k) && all.some((t) => t.kind === k))), batch];
const summary = summarize(all);
console.log(`\nchaos${schedule ? ` (schedule ${schedule})` : ''} (seed ${seed}, ${results.length} ${schedule ? 'faults' : 'trials'}, ${batch.wallS} s${all.length > results.length ? `; merged with ${all.length - results.length} earlier trials of other kinds` : ''})\n${formatTable(summary)}`);
const missed = summary.filter((k) => k.goalMet === false).map((k) => k.kind);
const goal = { description: `every P0/P1 kind: RTO p95 < ${URGENT_P95_GOAL_MS / 1000} s; other kinds within their seed target; every supported trial passed, 0 acknowledged commits lost, 0 agent crashes`, met: missed.length === 0 && summary.some((k) => k.goalMet === true), missed };
console.log(goal.met ? 'goal met for every kind exercised' : `goal NOT met: ${missed.join(', ') || 'no kind exercised'}`);
mkdirSync(path.dirname(out), { recursive: true });
const perKind = summary.map((k) => k.trials);
const seeds = [...new Set(batches.map((b) => b.seed))];
writeFileSync(out, JSON.stringify({
  bench: 'chaos', seed: seeds.length === 1 ? seed : null,
  ...(schedule ? { schedule, leftOut } : { trialsPerKind: perKind.length ? Math.min(...perKind) : trials }),
  goal, rtoTolerance: RTO_TOLERANCE, probes: Object.fromEntries(probes), kinds: summary, trials: all, ...(batches.length > 1 ? { batches } : {}), machine, at: batch.at,
}, null, 2) + '\n');
console.log(`wrote ${path.relative(process.cwd(), out)}`);
const broken = results.some((r) => r.violations.length > 0 || r.ackedLost > 0 || r.agentCrashes > 0);
process.exit(broken ? 1 : results.some((r) => r.status === 'failed') ? 2 : 0);

function unsupportedCluster(kind: ClusterFaultKind, trial: number, why: string): TrialResult {
  return {
    kind: kind.name, family: CLUSTER_FAMILY, seed, trial, replay: `npm run chaos -- --seed ${seed} --trial ${trial} --kinds ${kind.name} --cluster`, status: 'unsupported', injected: null,
    detectionMs: null, agentRtoMs: null, harnessRtoMs: null, harnessSpanMs: null, healToCommitMs: null, rtoAgrees: null, targetMs: SEED_TARGETS[kind.target].ms, priority: null, outcome: null,
    failures: [], escalations: 0, acked: 0, ackedLost: 0, pagesVerified: false, snapshotsVerified: false, agentCrashes: 0, violations: [], problems: [why], dir: null, wallMs: 0,
  };
}

/** The trials and batches of an earlier report at `file`, for --merge (none when there is none). */
function readEarlier(file: string): { trials: TrialResult[]; batches: Array<{ seed: number; kinds: string[] }> } {
  if (!existsSync(file)) return { trials: [], batches: [] };
  const doc = JSON.parse(readFileSync(file, 'utf8')) as { seed?: number; trials?: TrialResult[]; batches?: Array<{ seed: number; kinds: string[] }>; machine?: unknown; at?: string; trialsPerKind?: number };
  if (!Array.isArray(doc.trials)) throw new Error(`--merge: ${file} is not a chaos report (no trials)`);
  const kinds = [...new Set(doc.trials.map((t) => t.kind))];
  return { trials: doc.trials, batches: doc.batches ?? [{ seed: doc.seed ?? 0, kinds, trialsPerKind: doc.trialsPerKind, machine: doc.machine, at: doc.at } as { seed: number; kinds: string[] }] };
}
