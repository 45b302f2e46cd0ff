#!/usr/bin/env node
// `npm run test:unit`: every compiled test file under dist/test, in two phases.
//
// 1. Most files, two at a time (the machine has two CPUs).
// 2. The files in SERIAL, one at a time: each starts several real processes whose goals are
//    times (three agents and a 3-member etcd electing within a TTL, chaos trials against a real
//    agent and writer, a disk failed under a writer with a 30 s RTO). Two of them side by side,
//    or one beside the crash harness, starve each other of CPU and fail by the clock, not by a
//    bug: a CI run failed three of them that way, and none of them failed alone.
//
// Both phases run even when the first fails, so one run reports every failure. The TAP output
// goes to stdout as before; a spec report of each phase goes to a file, and at the end the
// failing tests' messages are printed again, shortened, so they are in the last lines of a log
// that shows only its beginning and end (a CI log does).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');

/** Test files (relative to dist/test) that run alone, in phase 2. */
const SERIAL = [
  'chaos/chaos.test.js',
  'chaos/chaosCluster.test.js',
  'chaos/chaosProc.test.js',
  'e2e/diskFailure.test.js',
  'plugins/cluster/agents.test.js',
  'plugins/cluster/failover.test.js',
  'plugins/cluster/faults.test.js',
  'plugins/cluster/partition.test.js',
];

function testFiles(dir) {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.test.js'))
    .map((e) => path.relative(dir, path.join(e.parentPath ?? e.path, e.name)))
    .sort();
}

const dist = path.join(root, 'dist', 'test');
const all = testFiles(dist);
const unknown = SERIAL.filter((f) => !all.includes(f));
if (unknown.length > 0) {
  console.error(`scripts/runTests.js: SERIAL names test files that do not exist: ${unknown.join(', ')}`);
  process.exit(2);
}
const reports = mkdtempSync(path.join(os.tmpdir(), 'ra-tests-'));
const phases = [
  { name: 'parallel', concurrency: 2, files: all.filter((f) => !SERIAL.includes(f)) },
  { name: 'serial', concurrency: 1, files: SERIAL },
];

let failed = false;
const digests = [];
for (const phase of phases) {
  const spec = path.join(reports, `${phase.name}.spec`);
  const args = [
    '--test', `--test-concurrency=${phase.concurrency}`,
    '--test-reporter=tap', '--test-reporter-destination=stdout',
    '--test-reporter=spec', `--test-reporter-destination=${spec}`,
    ...phase.files.map((f) => path.join(dist, f)),
  ];
  console.log(`# phase ${phase.name}: ${phase.files.length} files, ${phase.concurrency} at a time`);
  const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    failed = true;
    digests.push(`phase ${phase.name} failed (exit ${r.status ?? r.signal}); spec report: ${spec}\n${digest(spec)}`);
  }
}
if (failed) {
  console.log('\n# ---- failing tests, again (full report in the files named) ----');
  for (const d of digests) console.log(d);
  process.exit(1);
}

/** The spec report's "failing tests" part, with stack frames past the first two dropped. */
function digest(file) {
  let text;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    return `(no spec report: ${err.message})`;
  }
  const at = text.lastIndexOf('failing tests:');
  if (at < 0) return '(the spec report names no failing test: a file crashed or timed out; see the TAP output)';
  const out = [];
  let frames = 0;
  for (const line of text.slice(at).split('\n')) {
    if (/^\s+at /.test(line)) {
      if (++frames > 2) continue;
    } else frames = 0;
    out.push(line);
  }
  return out.join('\n');
}
