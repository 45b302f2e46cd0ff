import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { BIN } from '../helpers/cli.js';
import { needTool } from '../helpers/tools.js';

/** `run` on a real terminal: script(1) gives it a pseudo-terminal as stdout, timeout(1) its SIGTERM. */
function runOnTerminal(cfg: string, env: NodeJS.ProcessEnv): { status: number | null; out: string } {
  needTool('script', 'bsdutils');
  const cmd = `timeout --preserve-status -s TERM 6 ${process.execPath} ${BIN} run --config ${cfg}`;
  const r = spawnSync('script', ['-qefc', cmd, '/dev/null'], { encoding: 'utf8', timeout: 60_000, env: { ...env, NO_COLOR: '1' } });
  return { status: r.status, out: r.stdout.replace(/\r/g, '') };
}

describe('run on a terminal', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ra-tty-'));
  const cfg = path.join(dir, 'agent.yaml');
  // A process that prints a three-line stack trace on stderr, then waits to be stopped.
  writeFileSync(cfg, `agent: { dataDir: ./state, workers: 1, logLevel: info, http: { listen: '127.0.0.1:0' } }
processes:
  - id: tracer
    command: /bin/sh
    args: ['-c', 'printf "Error: boom\\\\n    at a (x.js:1:1)\\\\n    at b (y.js:2:2)\\\\n" >&2; exec sleep 30']
`);

  it('logs readable lines with local times, and a child stack trace line by line with its process and pid', () => {
    const { status, out } = runOnTerminal(cfg, { ...process.env, RECOVERY_AGENT_LOG_FORMAT: '' });
    assert.equal(status, 0, out);
    const lines = out.split('\n');
    const ready = lines.find((l) => l.includes('recovery-agent ready'));
    assert.match(ready ?? '', /^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\] INFO: recovery-agent ready$/, out);
    assert.ok(!lines.some((l) => l.startsWith('{')), `no JSON line on a terminal:\n${out}`);
    const started = /\[crash-detector tracer#(\d+)\] process started/.exec(out);
    assert.ok(started, out);
    const pid = started[1];
    for (const line of ['Error: boom', '    at a (x.js:1:1)', '    at b (y.js:2:2)']) {
      assert.ok(lines.some((l) => l.endsWith(`WARN: [crash-detector tracer#${pid} stderr] ${line}`)), `${line}:\n${out}`);
    }
  });

  it('agent.logFormat: json keeps JSON lines on a terminal', () => {
    const jsonCfg = path.join(dir, 'json.yaml');
    writeFileSync(jsonCfg, `agent: { dataDir: ./state-json, workers: 1, logFormat: json, http: { listen: '127.0.0.1:0' } }\n`);
    const { status, out } = runOnTerminal(jsonCfg, { ...process.env, RECOVERY_AGENT_LOG_FORMAT: '' });
    assert.equal(status, 0, out);
    const ready = out.split('\n').find((l) => l.includes('recovery-agent ready'));
    assert.equal((JSON.parse(ready!) as { msg: string }).msg, 'recovery-agent ready');
  });
});
