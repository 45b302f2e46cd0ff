/**
 * Process faults: SIGKILL and SIGSTOP of the application, of the agent, and of both together
 * (host death / a frozen host, as far as one host can show it). A killed agent is started again
 * by the harness, as systemd would (`Restart=always`); a stopped one is continued by `heal` after
 * its hold. A stopped application is left to the agent (its heartbeat falls silent: process-hang)
 * and continued by `heal` only if it is still there at the end.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FaultContext, FaultFamily, FaultKind, Injected } from './types.js';

type Who = 'app' | 'agent' | 'both';
type Sig = 'SIGKILL' | 'SIGSTOP';

function kind(who: Who, sig: Sig): FaultKind {
  const name = `${who}-${sig.toLowerCase()}`;
  const whom = who === 'both' ? 'the agent and the application together' : who === 'app' ? 'the supervised application' : 'the agent';
  if (who === 'app') {
    return sig === 'SIGKILL'
      ? { name, description: `SIGKILL of ${whom}`, target: 'instance-crash', expects: { type: 'failure', kinds: ['process-crash'] } }
      : { name, description: `SIGSTOP of ${whom} (its heartbeat falls silent)`, target: 'instance-crash', expects: { type: 'failure', kinds: ['process-hang'] } };
  }
  return {
    name,
    description: `${sig} of ${whom}${sig === 'SIGSTOP' ? ' for 1–3 s, then SIGCONT' : '; the harness starts the agent again, as systemd would'}`,
    target: 'instance-crash',
    expects: { type: 'agent' },
    ...(sig === 'SIGSTOP' ? { holdMs: (rng) => rng.int(1000, 3000) } : {}),
  };
}

const KINDS: Array<[Who, Sig]> = [
  ['app', 'SIGKILL'],
  ['app', 'SIGSTOP'],
  ['agent', 'SIGKILL'],
  ['agent', 'SIGSTOP'],
  ['both', 'SIGKILL'],
  ['both', 'SIGSTOP'],
];

/** The state letter of /proc/<pid>/stat (R, S, T, Z…), or null when the process is gone. */
export function procState(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return null;
  }
}

function signal(pid: number | null, sig: NodeJS.Signals): void {
  if (pid === null) return;
  try {
    process.kill(pid, sig);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

export const signals: FaultFamily = {
  name: 'signals',
  kinds: KINDS.map(([w, s]) => kind(w, s)),

  /** A child we start must show state T after SIGSTOP, run again after SIGCONT, and die of SIGKILL. */
  async probe() {
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    const exit = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_c, s) => resolve(s)));
    try {
      await new Promise<void>((resolve, reject) => child.once('spawn', resolve).once('error', reject));
      const pid = child.pid!;
      process.kill(pid, 'SIGSTOP');
      await sleep(50);
      if (procState(pid) !== 'T') return `a process sent SIGSTOP is in state ${procState(pid)}, not T`;
      process.kill(pid, 'SIGCONT');
      await sleep(50);
      if (procState(pid) === 'T') return 'a process sent SIGCONT stays stopped';
      process.kill(pid, 'SIGKILL');
      const s = await exit;
      return s === 'SIGKILL' ? null : `a process sent SIGKILL ended with ${s}`;
    } catch (err) {
      child.kill('SIGKILL');
      return `cannot signal a child process: ${(err as Error).message}`;
    }
  },

  async inject(k: FaultKind, ctx: FaultContext): Promise<Injected> {
    const [who, sig] = k.name.split('-') as [Who, string];
    const s: Sig = sig === 'sigkill' ? 'SIGKILL' : 'SIGSTOP';
    const pids: number[] = [];
    for (const w of who === 'both' ? (['agent', 'app'] as const) : [who]) {
      const pid = w === 'agent' ? ctx.agentPid() : ctx.appPid();
      if (pid === null) throw new Error(`${k.name}: the ${w} is not running`);
      pids.push(pid);
    }
    // Back to back, as close together as two syscalls can be.
    for (const pid of pids) process.kill(pid, s);
    return { what: `${s} to pid ${pids.join(' and ')}`, state: pids };
  },

  async heal(k: FaultKind, _ctx: FaultContext, injected: Injected) {
    if (!k.name.endsWith('sigstop')) return;
    for (const pid of injected.state as number[]) signal(pid, 'SIGCONT');
  },
};
