// Exit codes in every --help, and failures said the same way whether thrown or found with the
// result: text on stderr, with --json an "error" member on stdout, the same exit code.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { BIN, cli } from '../helpers/cli.js';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'ra-fail-'));

/** The CLI run asynchronously (the test process serves HTTP meanwhile). */
function cliAsync(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('close', (status) => resolve({ status, stdout, stderr })));
}

/** A port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** The last line of stdout as the --json error. */
function jsonErrorOf(stdout: string): { code: string | null; message: string; exitCode: number } {
  return (JSON.parse(stdout.trimEnd().split('\n').at(-1)!) as { error: { code: string | null; message: string; exitCode: number } }).error;
}

describe('cli: exit codes and failures', () => {
  it('every command documents its exit codes in --help', () => {
    for (const args of [['snapshot', 'create'], ['snapshot', 'list'], ['snapshot', 'prune'], ['snapshot', 'verify'], ['restore'], ['repair'], ['recover'], ['scan'], ['status']]) {
      const r = cli([...args, '--help']);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /\nExit codes: 0 /, args.join(' '));
      assert.match(r.stdout, /--json a failure also writes\s+\{"error":\{"code","message","exitCode"\}\} on stdout/, args.join(' '));
    }
  });

  it('an option refused while it is parsed still gives the --json error line (before the command runs)', () => {
    const dir = tmp();
    for (const bad of [['--time', 'yesterday'], ['--lsn', '-5']]) {
      const r = cli(['restore', '-d', dir, '-t', path.join(dir, 'x'), ...bad, '--json']);
      assert.equal(r.status, 2, r.stderr);
      assert.equal(jsonErrorOf(r.stdout).code, 'RA_ERR_USAGE', `${bad.join(' ')}: ${r.stdout}`);
    }
  });

  it('snapshot list and prune of a missing directory exit 2, as verify does; prune with nothing to delete says so', () => {
    const missing = path.join(tmp(), 'nope');
    for (const args of [['snapshot', 'list', missing], ['snapshot', 'prune', missing, '--keep-full', '1', '--keep-incremental', '1'], ['snapshot', 'verify', missing]]) {
      const r = cli(args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, /\[RA_ERR_SNAPSHOT_INVALID\]/);
      const j = cli([...args, '--json']);
      assert.equal(j.status, 2);
      assert.equal(jsonErrorOf(j.stdout).code, 'RA_ERR_SNAPSHOT_INVALID');
    }
    const empty = tmp();
    const prune = cli(['snapshot', 'prune', empty, '--keep-full', '1', '--keep-incremental', '0']);
    assert.equal(prune.status, 0, prune.stderr);
    assert.match(prune.stdout, /^nothing to prune in .*: every snapshot is within --keep-full 1, --keep-incremental 0/);
  });

  it('status with no agent says one line, and --json the same as an error line', async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    const r = cli(['status', '--url', url]);
    assert.equal(r.status, 1);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr, `recovery-agent: no agent answers at ${url} (connection refused): is it running? [RA_ERR_AGENT_UNREACHABLE]\n`);
    const j = cli(['status', '--url', url, '--json']);
    assert.equal(j.status, 1);
    assert.deepEqual(JSON.parse(j.stdout), { error: { code: 'RA_ERR_AGENT_UNREACHABLE', message: `no agent answers at ${url} (connection refused): is it running?`, exitCode: 1 } });
  });

  it('status of an unhealthy agent prints the status, then fails like a thrown error (stderr, --json error line, exit 1)', async () => {
    const doc = {
      agent: { version: '0.0.0', pid: 1, uptimeSeconds: 5, config: null },
      health: { healthy: false, reasons: ['P1 store-missing demo open'] },
      plugins: [], openFailures: [], recentRecoveries: [],
      statistics: { failuresDetected: 1, recoveriesSucceeded: 0, recoveriesFailed: 0, recoveriesUnhandled: 0, avgRtoMs: null, p95RtoMs: null, rtoComplianceRate: null },
    };
    const server: Server = createHttpServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(doc)));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    try {
      const text = await cliAsync(['status', '--url', url]);
      assert.equal(text.status, 1);
      assert.match(text.stdout, /: UNHEALTHY\n {2}! P1 store-missing demo open\n/);
      assert.equal(text.stderr, `recovery-agent: the agent at ${url} is unhealthy: P1 store-missing demo open [RA_ERR_AGENT_UNHEALTHY]\n`);
      const json = await cliAsync(['status', '--url', url, '--json']);
      assert.equal(json.status, 1);
      // One JSON document: the status, with the error member a thrown error's line has.
      assert.deepEqual(JSON.parse(json.stdout), { ...doc, error: { code: 'RA_ERR_AGENT_UNHEALTHY', message: `the agent at ${url} is unhealthy: P1 store-missing demo open`, exitCode: 1 } });
      assert.equal(json.stderr, text.stderr);
    } finally {
      server.close();
    }
  });
});
