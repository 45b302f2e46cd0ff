/**
 * The checker of the cluster fault tests and `bench/failover.ts` (#15 item 5): it reads the
 * record files the writers (`faultWriter.ts`) appended to and proves two things.
 *
 * 1. **No acknowledged commit lost** (sync mode): every writer run printed its store's pages as
 *    the store opened; an acknowledgement stamped before that open (by any node) must be there —
 *    the page holds at least its seq. A new primary opens only after the old lease lapsed, so
 *    this is "every commit acknowledged before the fault is on the new primary".
 * 2. **No two nodes acknowledged writes in overlapping epochs**: per node and epoch, the interval
 *    [first ack, last ack]; two nodes never share an epoch, and a node's acks in epoch e all
 *    precede any ack of a later epoch on another node (which also makes the intervals disjoint).
 *
 * Stamps are CLOCK_MONOTONIC nanoseconds taken by each writer once `commit()` resolved — an
 * upper bound of the acknowledgement's instant, so the overlap check errs on the strict side.
 */
import fs from 'node:fs';

export interface Ack {
  node: string;
  seq: number;
  page: number;
  epoch: number;
  ns: bigint;
}

export interface Run {
  node: string;
  pid: number;
  /** CLOCK_MONOTONIC when the store had opened (recovery done), before its pages were read. */
  openedNs: bigint | null;
  epoch: number | null;
  start: Map<number, number>;
  acks: Ack[];
  refused: number;
}

/** Adds one record line to `runs` (a line before the first `run` line is ignored). */
function addLine(node: string, runs: Run[], line: string): void {
  const f = line.split(' ');
  if (f[0] === 'run' && f.length === 3) {
    runs.push({ node, pid: Number(f[1]), openedNs: null, epoch: null, start: new Map(), acks: [], refused: 0 });
    return;
  }
  const run = runs[runs.length - 1];
  if (!run) return;
  if (f[0] === 'start' && f.length === 3) {
    run.start.set(Number(f[1]), Number(f[2]));
  } else if (f[0] === 'opened' && f.length === 3) {
    run.openedNs = BigInt(f[1]!);
    run.epoch = Number(f[2]);
  } else if (f[0] === 'acked' && f.length === 5 && /^\d+$/.test(f[4]!)) {
    run.acks.push({ node, seq: Number(f[1]), page: Number(f[2]), epoch: Number(f[3]), ns: BigInt(f[4]!) });
  } else if (f[0] === 'refused') {
    run.refused++;
  }
}

/** The runs of one node's record file, in order (a torn last line is ignored). */
export function parseRecord(node: string, text: string): Run[] {
  const runs: Run[] = [];
  for (const line of text.split('\n')) addLine(node, runs, line);
  return runs;
}

export function readRuns(files: ReadonlyArray<{ node: string; file: string }>): Run[] {
  return files.flatMap(({ node, file }) => (fs.existsSync(file) ? parseRecord(node, fs.readFileSync(file, 'utf8')) : []));
}

/**
 * `readRuns` for a caller that polls: each call reads only the bytes appended since the last
 * one. Re-reading and re-parsing every record whole on each 50 ms poll cost a CPU core by the
 * end of a long bench:failover run (about 300,000 acknowledgements), on a 2-CPU machine that
 * also runs the cluster it measures.
 */
export class RecordTail {
  private readonly files = new Map<string, { node: string; offset: number; rest: string; runs: Run[] }>();

  read(files: ReadonlyArray<{ node: string; file: string }>): Run[] {
    return files.flatMap(({ node, file }) => this.readOne(node, file));
  }

  private readOne(node: string, file: string): Run[] {
    let st = this.files.get(file);
    let size: number;
    try {
      size = fs.statSync(file).size;
    } catch {
      return st?.runs ?? [];
    }
    if (!st || size < st.offset) {
      st = { node, offset: 0, rest: '', runs: [] };
      this.files.set(file, st);
    }
    if (size === st.offset) return st.runs;
    const fd = fs.openSync(file, 'r');
    try {
      const buf = Buffer.alloc(size - st.offset);
      const n = fs.readSync(fd, buf, 0, buf.length, st.offset);
      st.offset += n;
      const lines = (st.rest + buf.subarray(0, n).toString('utf8')).split('\n');
      st.rest = lines.pop()!; // the unfinished last line, completed by a later read
      for (const line of lines) addLine(node, st.runs, line);
    } finally {
      fs.closeSync(fd);
    }
    return st.runs;
  }
}

export interface EpochSpan {
  node: string;
  epoch: number;
  first: bigint;
  last: bigint;
  count: number;
}

export interface CheckResult {
  acks: number;
  runs: number;
  spans: EpochSpan[];
  /** Acknowledged commits missing where a later run opened its store. */
  lost: string[];
  /** Pairs of nodes whose acknowledgements overlapped in epochs. */
  overlaps: string[];
}

export function spans(runs: readonly Run[]): EpochSpan[] {
  const by = new Map<string, EpochSpan>();
  for (const a of runs.flatMap((r) => r.acks)) {
    const key = `${a.node}\0${a.epoch}`;
    const s = by.get(key);
    if (!s) by.set(key, { node: a.node, epoch: a.epoch, first: a.ns, last: a.ns, count: 1 });
    else {
      if (a.ns < s.first) s.first = a.ns;
      if (a.ns > s.last) s.last = a.ns;
      s.count++;
    }
  }
  return [...by.values()].sort((x, y) => x.epoch - y.epoch || (x.first < y.first ? -1 : 1));
}

const byNs = (x: bigint, y: bigint): number => (x < y ? -1 : x > y ? 1 : 0);

/**
 * The highest seq acknowledged per page before each run's store opened (runs that never opened
 * are absent). One sweep over the acknowledgements in time order, the runs by open time: the
 * check ran over every acknowledgement once per run, which by the end of a long chaos run (about
 * 150 runs, 400,000 acknowledgements) held the harness's thread 0.5–0.8 s per call — and that
 * thread forwards every member's etcd traffic (its fault proxies), so two calls back to back
 * between trials cut every member off from etcd for over half the lease TTL at once.
 */
function bestBeforeOpen(runs: readonly Run[], acks: readonly Ack[]): Map<Run, Map<number, Ack>> {
  const opened = runs.filter((r) => r.openedNs !== null).sort((x, y) => byNs(x.openedNs!, y.openedNs!));
  const inTime = [...acks].sort((x, y) => byNs(x.ns, y.ns));
  const best = new Map<number, Ack>();
  const out = new Map<Run, Map<number, Ack>>();
  let i = 0;
  for (const r of opened) {
    for (; i < inTime.length && inTime[i]!.ns < r.openedNs!; i++) {
      const a = inTime[i]!;
      if ((best.get(a.page)?.seq ?? 0) < a.seq) best.set(a.page, a);
    }
    out.set(r, new Map(best));
  }
  return out;
}

export function check(runs: readonly Run[]): CheckResult {
  const acks = runs.flatMap((r) => r.acks);
  const lost: string[] = [];
  const before = bestBeforeOpen(runs, acks);
  for (const r of runs) {
    // The highest seq acknowledged per page before this run's store opened; none for a run that
    // died before its store opened (it read nothing).
    const best = before.get(r);
    if (best === undefined) continue;
    for (const [page, a] of best) {
      const have = r.start.get(page);
      if (have === undefined || have < a.seq) lost.push(`page ${page} opened on ${r.node} (pid ${r.pid}, epoch ${r.epoch}) at ${have ?? 'nothing'}, but commit ${a.seq} was acknowledged by ${a.node} in epoch ${a.epoch} before`);
    }
  }
  const sp = spans(runs);
  const overlaps: string[] = [];
  for (let i = 0; i < sp.length; i++) {
    for (let j = i + 1; j < sp.length; j++) {
      const [x, y] = [sp[i]!, sp[j]!];
      if (x.node === y.node) continue;
      if (x.epoch === y.epoch) overlaps.push(`${x.node} and ${y.node} both acknowledged in epoch ${x.epoch}`);
      else if (x.last >= y.first) overlaps.push(`${x.node} acknowledged in epoch ${x.epoch} until ${x.last}, after ${y.node}'s first acknowledgement in epoch ${y.epoch} at ${y.first} (${Number(x.last - y.first) / 1e6} ms)`);
    }
  }
  return { acks: acks.length, runs: runs.length, spans: sp, lost, overlaps };
}
