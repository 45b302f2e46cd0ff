/**
 * CPU cost of health sampling every second, against an idle Node process in the same run.
 *
 * Three child processes run side by side for the same window (default 30 s, after a 3 s
 * warm-up), so a noisy neighbour hurts every row alike:
 *   - idle node:        a Node process with a 1 s timer that does nothing (the baseline);
 *   - idle agent:       the agent with no plugins (HTTP API off);
 *   - agent + health:   the agent with the health-monitor plugin sampling every 1 s: CPU,
 *                       memory, disk I/O, network, two filesystems, one store's WAL, history,
 *                       score and prediction.
 * Each child reads its own CPU time (utime + stime from /proc/self/stat, every thread counted)
 * at the start and end of the window; the row's value is that time as a % of one core.
 * Goal: agent + health costs < 1 % of one core more than the idle agent.
 *
 * Run: npm run bench:health   (options: --seconds S)
 */
import 'reflect-metadata';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { Agent } from '../core/agent.js';
import { validateConfig } from '../cli/config.js';
import healthMonitor, { HealthMonitor } from '../plugins/health-monitor/index.js';
import { createStore } from '../plugins/pagestore/storeFiles.js';
import { numArg, strArg } from './lib/args.js';
import { report, type BenchRow } from './lib/report.js';

type Mode = 'idle' | 'agent' | 'health';
const WARMUP_MS = 3000;

const SECONDS = numArg('seconds', 30);

const clockTicks = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** CPU seconds of this process so far (utime + stime: every thread). */
function cpuSeconds(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / clockTicks; // fields 14 and 15
}

interface ChildResult {
  mode: Mode;
  cpuSeconds: number;
  wallSeconds: number;
  /** process.cpuUsage() over the same window, microsecond resolution: a cross-check. */
  cpuUsageSeconds: number;
  ticks?: number;
  tickMsMean?: number;
  tickMsMax?: number;
}

async function child(mode: Mode): Promise<void> {
  let agent: Agent | null = null;
  const keepAlive = setInterval(() => undefined, 1000);
  if (mode !== 'idle') {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ra-bench-health-'));
    const store = path.join(dir, 'store');
    await createStore(store, { pageCount: 256 });
    const config = validateConfig(
      { agent: { dataDir: path.join(dir, 'agent'), workers: 1, http: { enabled: false } }, stores: [{ id: 'bench', path: store }], health: { interval: '1s', paths: ['/dev/shm'] } },
      path.join(dir, 'agent.yaml'),
      {},
    );
    agent = new Agent({ config, builtins: mode === 'health' ? [healthMonitor] : [], log: pino({ level: 'silent' }) });
    await agent.start();
  }
  await sleep(WARMUP_MS);
  const tickTimes: number[] = [];
  let lastAt: number | null = null;
  const t0 = performance.now();
  const c0 = cpuSeconds();
  const u0 = process.cpuUsage();
  while (performance.now() - t0 < SECONDS * 1000) {
    await sleep(250);
    if (agent && mode === 'health') {
      const s = agent.container.resolve(HealthMonitor).snapshot();
      if (s.at !== null && s.at !== lastAt) {
        lastAt = s.at;
        tickTimes.push(s.tickMs);
      }
    }
  }
  const u = process.cpuUsage(u0);
  const out: ChildResult = { mode, cpuSeconds: cpuSeconds() - c0, wallSeconds: (performance.now() - t0) / 1000, cpuUsageSeconds: (u.user + u.system) / 1e6 };
  if (tickTimes.length) Object.assign(out, { ticks: tickTimes.length, tickMsMean: tickTimes.reduce((a, b) => a + b, 0) / tickTimes.length, tickMsMax: Math.max(...tickTimes) });
  process.stdout.write(JSON.stringify(out) + '\n');
  clearInterval(keepAlive);
  await agent?.stop();
}

function runChild(mode: Mode): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [fileURLToPath(import.meta.url), '--child', mode, '--seconds', String(SECONDS)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    c.stdout.on('data', (d: Buffer) => (text += d.toString()));
    c.on('exit', (code) => {
      const line = text.trim().split('\n').at(-1);
      if (code !== 0 || !line) return reject(new Error(`bench child ${mode} failed (exit ${code})`));
      resolve(JSON.parse(line) as ChildResult);
    });
  });
}

async function main(): Promise<void> {
  console.log(`health sampling cost: 3 processes side by side for ${SECONDS} s each (after ${WARMUP_MS / 1000} s of warm-up)`);
  const [idle, agent, health] = await Promise.all((['idle', 'agent', 'health'] as const).map(runChild));
  const pct = (r: ChildResult) => (100 * r.cpuSeconds) / r.wallSeconds;
  const row = (name: string, r: ChildResult): BenchRow => ({
    name,
    value: pct(r),
    unit: '% core',
    extra: { cpuSeconds: Number(r.cpuSeconds.toFixed(3)), cpuUsagePct: Number(((100 * r.cpuUsageSeconds) / r.wallSeconds).toFixed(3)), ...(r.ticks ? { ticks: r.ticks, tickMsMean: Number(r.tickMsMean!.toFixed(2)), tickMsMax: Number(r.tickMsMax!.toFixed(2)) } : {}) },
  });
  const cost = pct(health) - pct(agent);
  const costUsage = (100 * (health.cpuUsageSeconds - agent.cpuUsageSeconds)) / health.wallSeconds;
  report({
    bench: 'health',
    baseline: 'idle node',
    rows: [row('idle node', idle), row('idle agent', agent), row('agent + health @1s', health)],
    goal: { description: `sampling every second costs < 1 % of one core over the idle agent (measured ${cost.toFixed(3)} %; process.cpuUsage ${costUsage.toFixed(3)} %)`, met: cost < 1 },
    params: { seconds: SECONDS, warmupMs: WARMUP_MS, intervalMs: 1000, clockTicksPerSecond: clockTicks, costPctOfCore: Number(cost.toFixed(4)), costPctOfCoreCpuUsage: Number(costUsage.toFixed(4)) },
  });
}

const mode = strArg('child') as Mode | undefined;
if (mode) await child(mode);
else await main();
