// End to end, the replica role: a replica agent (`recovery-agent run`, a separate process) streams
// from a primary on loopback. The primary here is built in the test from the stream's protocol
// (core/replication/protocol.ts) over a store written by the real writer (helpers/replica.ts), so
// that what is sent is known exactly (twoAgents.test.ts runs the owner's real sender). It checks the replica's hello against
// its own log (epoch, R(L) from walRolling.ts), and counts the log bytes it sends per connection:
// the oracle for "a restart resumes from its durable position, no re-copy".
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FrameType, keepaliveFrame, openChannel, parseHello, walFrame, type Hello } from '../../../core/replication/protocol.js';
import { foldRecords } from '../../../plugins/pagestore/walRolling.js';
import { PAGE, primaryRuns, writePrimary, type Primary, type Run } from '../../helpers/replica.js';
import { copyStoreDir } from '../../helpers/store.js';
import { replicationOf, startAgent, until, type Agent } from './agentHarness.js';

const SECRET = 'a-replication-secret-of-32-bytes';

/** A primary speaking the protocol: serves `runs` up to `limit` (an LSN) to each replica from its hello. */
class TestPrimary {
  readonly server: net.Server;
  limit = Infinity;
  readonly hellos: Hello[] = [];
  /** Log bytes sent, per connection. */
  readonly sent: number[] = [];
  constructor(
    private readonly runs: Run[],
  ) {
    this.server = net.createServer((sock) => {
      void (async () => {
        const ch = await openChannel(sock, { role: 'primary', secret: SECRET, epoch: 1 });
        const hello = parseHello(await ch.next());
        this.hellos.push(hello);
        // R(L), folded over the primary's records below L (its early segments are in the archive).
        let rolling = 0n;
        // (A hello may fall inside a run: its records below the hello count, the rest is sent.)
        for (const r of this.runs) if (r.startLsn < hello.lsn) rolling = foldRecords(rolling, r.bytes, 0, Math.min(r.endLsn, hello.lsn) - r.startLsn);
        if (hello.epoch !== 1) return ch.fail('RA_ERR_REPL_EPOCH', `epoch ${hello.epoch}`);
        if (rolling !== hello.rolling) return ch.fail('RA_ERR_REPL_DIVERGED', `diverged at ${hello.lsn}`);
        const n = this.sent.push(0) - 1;
        let flushed = hello.lsn;
        for (const r of this.runs) {
          if (r.endLsn <= hello.lsn || r.endLsn > this.limit) continue;
          const from = Math.max(r.startLsn, hello.lsn);
          const bytes = r.bytes.subarray(from - r.startLsn);
          ch.send(walFrame(1, from, bytes));
          this.sent[n]! += bytes.byteLength;
          flushed = r.endLsn;
          await ch.drained();
        }
        // Keepalives, as a real primary sends them: a primary silent for long is taken as dead.
        const keepalive = () => ch.send(keepaliveFrame(1, { flushedLsn: flushed, timeMs: Date.now() }));
        keepalive();
        const timer = setInterval(keepalive, 200);
        try {
          for (;;) {
            const f = await ch.next();
            assert.equal(f.type, FrameType.ack);
          }
        } finally {
          clearInterval(timer);
        }
      })().catch((err: unknown) => {
        // The wrong-secret case ends here by design; anything else is printed for the diagnosis.
        if (!/closed|authentication failed/.test(String(err))) console.log(`# test primary: ${String(err)}`);
      });
    });
  }
  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }
}

interface StoreStatus {
  state: string;
  reason?: string;
  durableLsn: number;
  appliedLsn: number;
  lagBytes: number | null;
  lagMs: number | null;
  bytesReceived: number;
}

function startReplica(dir: string, name: string, store: string, port: number, secret: string): Agent {
  writeFileSync(path.join(dir, `${name}.secret`), secret + '\n', { mode: 0o600 });
  return startAgent(dir, name, `stores:
  - id: r
    path: ${store}
    replication: { role: replica, primary: 127.0.0.1:${port}, secretFile: ./${name}.secret, id: ${name} }
`);
}

const status = (base: string): Promise<StoreStatus> => replicationOf<StoreStatus>(base, 'r');

describe('replica agent, end to end', () => {
  let root: string;
  let primary: Primary;
  let runs: Run[];
  let server: TestPrimary;
  const children: ChildProcess[] = [];

  /** The log bytes of the runs in [from, to): what a replica positioned at `from` must receive to reach `to`. */
  const logBytes = (from: number, to: number): number => runs.filter((r) => r.endLsn > from && r.endLsn <= to).reduce((a, r) => a + r.endLsn - Math.max(r.startLsn, from), 0);

  before(async () => {
    root = mkdtempSync(path.join(os.tmpdir(), 'ra-repl-'));
    primary = await writePrimary(root, 600, 150);
    runs = primaryRuns(primary, 0, 8, 3);
    server = new TestPrimary(runs);
    await new Promise<void>((r) => server.server.listen(0, '127.0.0.1', r));
  });

  after(async () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    server.server.close();
  });

  it('streams, shows lag, survives kill -9 without a re-copy, and ends with every page equal', async () => {
    copyStoreDir(primary.base, path.join(root, 'replica'));
    const end = runs.at(-1)!.endLsn;
    const mid = runs[Math.floor(runs.length / 2)]!.endLsn;
    server.limit = mid;
    const a = startReplica(root, 'r1', path.join(root, 'replica'), server.port, SECRET);
    children.push(a.child);
    const base = await a.base;
    const first = await until('the first half applied', async () => {
      const s = await status(base);
      return s.appliedLsn === mid && s.state === 'streaming' ? s : undefined;
    });
    assert.equal(first.durableLsn, mid);
    assert.equal(first.lagBytes, 0);
    assert.equal(typeof first.lagMs, 'number');
    assert.equal(server.sent[0], logBytes(server.hellos[0]!.lsn, mid), 'the first connection received the log from its base');

    // kill -9, then the primary has written more meanwhile.
    a.child.kill('SIGKILL');
    await new Promise((r) => a.child.once('exit', r));
    server.limit = Infinity;
    const b = startReplica(root, 'r1', path.join(root, 'replica'), server.port, SECRET);
    children.push(b.child);
    const base2 = await b.base;
    const done = await until('everything applied', async () => {
      const s = await status(base2);
      return s.appliedLsn === end ? s : undefined;
    });
    assert.equal(done.durableLsn, end);
    const hello = server.hellos.at(-1)!;
    assert.equal(hello.lsn, mid, 'the restarted replica says hello from its durable end');
    assert.equal(server.sent.at(-1), logBytes(mid, end), 'after the restart only what was written meanwhile was sent');
    assert.equal(done.bytesReceived, logBytes(mid, end), 'the restarted agent received only that');
    assert.ok(logBytes(mid, end) < logBytes(server.hellos[0]!.lsn, end) * 0.75);
    const metrics = await (await fetch(`${base2}/metrics`)).text();
    assert.match(metrics, /recovery_agent_replication_lag_bytes\{store="r",replica="r1"\} 0/);
    assert.match(metrics, /recovery_agent_replication_lag_seconds\{store="r",replica="r1"\}/);

    b.child.kill('SIGTERM');
    assert.equal(await new Promise((r) => b.child.once('exit', r)), 0, 'the agent stops cleanly');
    const mine = readFileSync(path.join(root, 'replica', 'pages.db'));
    const theirs = readFileSync(path.join(primary.dir, 'pages.db'));
    assert.equal(mine.byteLength, theirs.byteLength);
    for (let id = 0; id < theirs.byteLength / PAGE; id++) {
      assert.ok(mine.subarray(id * PAGE, (id + 1) * PAGE).equals(theirs.subarray(id * PAGE, (id + 1) * PAGE)), `page ${id} differs from the primary's`);
    }
  });

  it('is refused with a clear error on a wrong secret, and applies nothing', async () => {
    copyStoreDir(primary.base, path.join(root, 'wrong'));
    const hellos = server.hellos.length;
    const a = startReplica(root, 'r2', path.join(root, 'wrong'), server.port, 'not-the-secret-of-the-primary');
    children.push(a.child);
    const base = await a.base;
    const s = await until('the refusal', async () => {
      const st = await status(base);
      return st.state === 'refused' ? st : undefined;
    });
    assert.match(s.reason ?? '', /authentication failed/);
    assert.equal(s.bytesReceived, 0);
    assert.equal(s.appliedLsn, s.durableLsn);
    assert.equal(server.hellos.length, hellos, 'no hello got past the handshake');
    const { failures } = (await (await fetch(`${base}/failures`)).json()) as { failures: Array<{ kind: string; priority: string; evidence: { code: string; reason: string } }> };
    const refused = failures.filter((f) => f.kind === 'replication-refused');
    assert.equal(refused.length, 1, 'one failure on the bus, not one per attempt');
    assert.equal(refused[0]!.priority, 'P1');
    assert.equal(refused[0]!.evidence.code, 'RA_ERR_REPL_AUTH');
    const st = (await (await fetch(`${base}/status`)).json()) as { replication: { r: { state: string } } };
    assert.equal(st.replication.r.state, 'refused', 'the status says why');
    a.child.kill('SIGTERM');
    await new Promise((r) => a.child.once('exit', r));
  });
});
