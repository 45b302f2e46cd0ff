/**
 * The crash harness from the command line, for longer runs than CI's:
 *
 *   npm run test:crash -- --iterations 2000 --seed 42 [--dir DIR] [--keep] [--page-count N] [--quiet]
 *                         [--io-faults mixed|only|off]
 *
 * --cache-pages and --concurrency fix those writer parameters (otherwise picked at random).
 * --io-faults: I/O fault trials (ioFaults.ts: a short write then ENOSPC, ENOSPC, EIO on a
 * write, EIO on an fsync, injected by an LD_PRELOAD library compiled with cc) mixed in with the
 * kills (default), alone, or none.
 * Prints a line per iteration (every 10 with --quiet) and the summary; exits 1 on any violation
 * or if a fault point or I/O fault kind never fired. A failing run's store is kept for inspection.
 */
import { parseArgs } from 'node:util';
import { FAULT_POINTS, formatSummary, runCrashHarness } from './harness.js';
import { IO_FAULT_KINDS } from './ioFaults.js';

const USAGE = 'usage: run.js --iterations N [--seed S] [--dir DIR] [--keep] [--page-count N] [--quiet] [--cache-pages N] [--concurrency C] [--io-faults mixed|only|off]\n';

let parsed;
try {
  parsed = parseArgs({
    options: {
      help: { type: 'boolean', short: 'h', default: false },
      iterations: { type: 'string', default: '300' },
      seed: { type: 'string' },
      dir: { type: 'string' },
      keep: { type: 'boolean', default: false },
      'page-count': { type: 'string', default: '96' },
      quiet: { type: 'boolean', default: false },
      'cache-pages': { type: 'string' },
      concurrency: { type: 'string' },
      'io-faults': { type: 'string', default: 'mixed' },
    },
    strict: true,
  });
} catch (err) {
  process.stderr.write(`run.js: ${(err as Error).message}\n${USAGE}`);
  process.exit(2);
}
const { values } = parsed;
if (values.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}

const iterations = Number(values.iterations);
const seed = values.seed !== undefined ? Number(values.seed) : (Date.now() % 1_000_000) + 1;
const ioFaults = values['io-faults'];
if (!Number.isInteger(iterations) || iterations < 1 || !Number.isInteger(seed) || !['mixed', 'only', 'off'].includes(ioFaults)) {
  process.stderr.write(USAGE);
  process.exit(2);
}
console.log(`crash harness: ${iterations} iterations, seed ${seed} (rerun with --seed ${seed}), I/O faults ${ioFaults}`);
const summary = await runCrashHarness({
  seed,
  iterations,
  ...(values.dir ? { dir: values.dir } : {}),
  keep: values.keep,
  pageCount: Number(values['page-count']),
  progressEvery: values.quiet ? 10 : 1,
  ...(ioFaults !== 'off' ? { ioFaults: ioFaults as 'mixed' | 'only' } : {}),
  writer: {
    ...(values['cache-pages'] !== undefined ? { cachePages: Number(values['cache-pages']) } : {}),
    ...(values.concurrency !== undefined ? { concurrency: Number(values.concurrency) } : {}),
  },
  log: (line) => console.log(line),
});
console.log(formatSummary(summary));
const unfired = [
  ...(ioFaults === 'only' ? [] : FAULT_POINTS.filter((p) => summary.faultsFired[p] === 0)),
  ...(ioFaults === 'off' ? [] : IO_FAULT_KINDS.filter((k) => summary.ioFaultsFired[k] === 0).map((k) => `io:${k}`)),
];
if (unfired.length > 0) console.log(`fault points that never fired: ${unfired.join(', ')}${iterations < 50 ? ' (too few iterations to expect all)' : ''}`);
process.exit(summary.violations.length > 0 || (unfired.length > 0 && iterations >= 50) ? 1 : 0);
