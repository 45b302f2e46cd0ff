/** `recovery-agent cluster status` against a stand-in agent's /cluster: the table, --json, and its exit codes. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { ClusterDoc } from '../../plugins/cluster/routes.js';
import { BIN } from '../helpers/cli.js';

function run(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

const row = (member: string, role: 'leader' | 'replica', lagBytes: number | null) => ({
  member, role, epoch: 7, durableLsn: 1000, appliedLsn: 1000 - (lagBytes ?? 0), lagBytes, health: 'ok', streaming: role === 'replica', httpAddress: `10.0.0.${member.length}:9464`, replicationAddress: null, updatedAt: 0,
});
const self = { leader: false, leaseRemainingSeconds: 1.5, leaseDeadline: '1', eligible: false, reason: 'sync: 1 of 2 replicas answer, 2 are needed to know the last acknowledged commit', partitioned: false, leadership: [] };
const withLeader: ClusterDoc = { cluster: 'shop', member: 'b', leader: { member: 'a', epoch: 7, httpAddress: null, replicationAddress: null }, self, members: [row('a', 'leader', 0), row('b', 'replica', 300)] };
const leaderless: ClusterDoc = { ...withLeader, leader: null, members: [row('b', 'replica', null)] };

describe('cli: cluster status', () => {
  let server: http.Server;
  let base = '';
  let answer: { status: number; body: unknown } = { status: 200, body: withLeader };
  before(async () => {
    server = http.createServer((req, res) => {
      assert.equal(req.url, '/cluster');
      res.writeHead(answer.status, { 'content-type': 'application/json' }).end(JSON.stringify(answer.body));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => server.close());

  it('prints the members as a table, the leader first in the title', async () => {
    answer = { status: 200, body: withLeader };
    const r = await run(['cluster', 'status', '--url', base]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^Cluster: shop \(leader a, epoch 7; \* = the member asked\)\n/);
    assert.match(r.stdout, /\| a +\| 10\.0\.0\.1:9464 \| Leader +\| ok +\| 7 +\| 1000 +\| 1000 +\| 0 +\|/);
    assert.match(r.stdout, /\| b \* +\| 10\.0\.0\.1:9464 \| Replica \(streaming\) \| ok +\| 7 +\| 1000 +\| 700 +\| 300 +\|/);
    assert.match(r.stdout, /b may not lead: sync: 1 of 2 replicas answer/);
  });

  it('no leader: the table, then exit 1 with RA_ERR_CLUSTER_NO_LEADER (inside the --json document)', async () => {
    answer = { status: 200, body: leaderless };
    const r = await run(['cluster', 'status', '--url', base]);
    assert.equal(r.status, 1);
    assert.match(r.stdout, /NO LEADER/);
    assert.match(r.stderr, /RA_ERR_CLUSTER_NO_LEADER/);
    const j = await run(['cluster', 'status', '--json', '--url', base]);
    assert.equal(j.status, 1);
    const doc = JSON.parse(j.stdout) as ClusterDoc & { error: { code: string; exitCode: number } };
    assert.equal(doc.cluster, 'shop');
    assert.deepEqual([doc.error.code, doc.error.exitCode], ['RA_ERR_CLUSTER_NO_LEADER', 1]);
  });

  it('an agent in no cluster (404): exit 2, RA_ERR_CLUSTER_NOT_MEMBER', async () => {
    answer = { status: 404, body: { error: 'not found' } };
    const r = await run(['cluster', 'status', '--url', base]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /RA_ERR_CLUSTER_NOT_MEMBER/);
  });

  it('documents its exit codes in --help', async () => {
    const r = await run(['cluster', 'status', '--help']);
    assert.equal(r.status, 0);
    assert.match(r.stdout, /\nExit codes: 0 /);
    assert.match(r.stdout, /--json a\s+failure also writes\s+\{"error":\{"code","message","exitCode"\}\} on stdout/);
  });
});
