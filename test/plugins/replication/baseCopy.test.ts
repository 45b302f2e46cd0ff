// A new or far-behind replica from a base copy (#14 item 2, #15 rejoin): the replica session of
// the replication plugin against a real primary (a PageStore with replication.json, in this
// process) with a writer running during the copy; every page equal to the primary's once caught
// up. A replica agent killed (-9, a fault point) in the middle of its base copy leaves no store,
// and the restarted agent copies again from scratch. A stopped replica whose segments the
// primary retired is refused as too far behind; with autoReinit it is moved aside and made again.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { baseBeginFrame, baseEndFrame, basePageFrame, parseBaseRequest } from '../../../core/replication/baseFrames.js';
import { connectChannel, openChannel } from '../../../core/replication/protocol.js';
import { PageStore } from '../../../plugins/pagestore/pageStore.js';
import { ReplicaSession } from '../../../plugins/replication/replicaSession.js';
import { BIN } from '../../helpers/cli.js';
import { pagestore } from '../../helpers/engine.js';
import { captureLogger } from '../../helpers/logCapture.js';
import { exited, killAgents, replicationOf, startAgent, until, type Agent } from './agentHarness.js';

const SECRET = 'base-copy-test-secret-32-bytes!!';
const PAGE = 4096;
const PAGES = 600;
const SEG = 256 * 1024;

async function openPrimary(dir: string): Promise<PageStore> {
  await (await PageStore.open(dir, { create: true, pageCount: PAGES, pageSize: PAGE, segmentSize: SEG, controlSocket: false })).close();
  writeFileSync(path.join(dir, 'replication.json'), JSON.stringify({ role: 'primary', listen: '127.0.0.1:0', secret: SECRET, epoch: 1, keepaliveMs: 50 }), { mode: 0o600 });
  // A small cache: most pages of the copy come from the data file, the hot ones from memory.
  return PageStore.open(dir, { checkpointIntervalMs: 0, checkpointWalBytes: 1 << 30, cacheBytes: 24 * PAGE, controlSocket: false });
}

async function write(store: PageStore, pages: number[], tag: string): Promise<void> {
  const tx = store.begin();
  for (const p of pages) await tx.write(p, (p * 37) % 3000, Buffer.from(`${tag} page ${p} `.repeat(8)));
  await tx.commit();
}

/** Every page gets content (so a copy of the created store would not pass). */
async function fill(store: PageStore, tag: string): Promise<void> {
  for (let p = 1; p < PAGES; p += 10) await write(store, Array.from({ length: Math.min(10, PAGES - p) }, (_, k) => p + k), tag);
}

/** A writer on hot pages and cold ones until `stop()`, with a checkpoint now and then. */
function runWriter(store: PageStore): { stop(): Promise<number> } {
  let writing = true;
  const done = (async () => {
    let n = 0;
    while (writing) {
      await write(store, [1 + (n % 20), 1 + ((n * 53) % (PAGES - 1))], `w${n}`);
      n++;
      if (n % 150 === 0) await store.checkpoint();
      await new Promise((r) => setTimeout(r, 1));
    }
    return n;
  })();
  // Kept from an unhandled rejection when a test fails before stop(): its own error is the one to see.
  done.catch(() => undefined);
  return {
    stop: async () => {
      writing = false;
      return done;
    },
  };
}

/** Asserts that the replica's data file holds every page as the primary has it now. */
async function assertPagesEqual(primary: PageStore, replicaDir: string): Promise<void> {
  const data = readFileSync(path.join(replicaDir, 'pages.db'));
  assert.equal(data.byteLength, PAGES * PAGE);
  const differ: number[] = [];
  for (let p = 0; p < PAGES; p++) {
    const { image } = await primary.readPage(p);
    if (!image.equals(data.subarray(p * PAGE, (p + 1) * PAGE))) differ.push(p);
  }
  assert.deepEqual(differ, [], 'pages that differ from the primary\'s');
}

async function caughtUp(session: ReplicaSession, primary: PageStore): Promise<void> {
  const end = primary.endLsn;
  await until('the replica applied everything', () => {
    const s = session.status();
    return s.state === 'streaming' && s.durableLsn >= end && s.appliedLsn >= end ? true : undefined;
  });
}

/** The CLI, run asynchronously (the primary serving the copy is in this process). */
function cliAsync(args: string[], cwd: string): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [BIN, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('close', (status) => resolve({ status, stdout, stderr })));
}

describe('replica base copy', () => {
  let root: string;
  const agents: Agent[] = [];
  before(() => {
    root = mkdtempSync(path.join(os.tmpdir(), 'ra-basecopy-'));
  });
  after(() => killAgents(agents));

  it('makes a new replica from a base copy taken while the primary writes; every page equal after catch-up', async () => {
    const primary = await openPrimary(path.join(root, 'p1'));
    const { log, lines } = captureLogger();
    const replicaDir = path.join(root, 'r1');
    let session: ReplicaSession | undefined;
    try {
      await fill(primary, 'v0');
      const writer = runWriter(primary);
      session = new ReplicaSession({ storeId: 'r', dir: replicaDir, engine: pagestore, host: '127.0.0.1', port: primary.replicationAddress!.port, secret: SECRET, id: 'r1', log, onRefused: () => undefined });
      await session.start();
      await until('the replica streaming', () => (session!.status().state === 'streaming' ? true : undefined));
      // The writer kept going through the copy and after it.
      await new Promise((r) => setTimeout(r, 300));
      const n = await writer.stop();
      assert.ok(n > 50, `the writer ran during the copy (${n} commits)`);
      await caughtUp(session, primary);
      const st = session.status();
      assert.equal(st.baseCopies, 1);
      assert.deepEqual(st.baseCopy, { pagesCopied: PAGES, pagesTotal: PAGES, done: true });
      assert.ok(lines().some((l) => l.msg === 'replica base copy progress' && l.pagesCopied === PAGES), 'progress in the log');
      assert.deepEqual(readdirSync(root).filter((f) => f.startsWith('r1.init-')), [], 'nothing left aside');
      await session.stop();
      session = undefined;
      await assertPagesEqual(primary, replicaDir);
    } finally {
      await session?.stop();
      await primary.close();
    }
  });

  for (const [n, fault, when] of [
    ['2', 'base-copy:3', 'in the middle of its base copy'],
    ['2b', 'base-copy-before-rename', 'with its base copy complete and synced but not renamed into place'],
  ] as const) {
  it(`a replica agent killed ${when} leaves no store; restarted, it copies again from scratch`, async () => {
    const primary = await openPrimary(path.join(root, `p${n}`));
    const replicaDir = path.join(root, `r${n}`);
    try {
      await fill(primary, 'v0');
      writeFileSync(path.join(root, `r${n}.secret`), SECRET + '\n', { mode: 0o600 });
      const yaml = `stores:
  - id: r
    path: ${replicaDir}
    replication: { role: replica, primary: 127.0.0.1:${primary.replicationAddress!.port}, secretFile: ./r${n}.secret, id: r${n} }
`;
      process.env.RA_FAULT = fault;
      const killed = startAgent(root, `r${n}`, yaml);
      delete process.env.RA_FAULT;
      agents.push(killed);
      await exited(killed.child);
      assert.equal(killed.child.signalCode, 'SIGKILL', 'the fault point killed the agent');
      assert.ok(!existsSync(replicaDir), 'no store where the replica belongs');
      assert.equal(readdirSync(root).filter((f) => f.startsWith(`r${n}.init-`)).length, 1, 'the half copy is aside');

      const writer = runWriter(primary);
      const again = startAgent(root, `r${n}`, yaml);
      agents.push(again);
      const base = await again.base;
      await until('the replica streaming', async () => ((await replicationOf<{ state: string }>(base, 'r')).state === 'streaming' ? true : undefined)).catch((err: Error) => {
        throw new Error(`${err.message}; the agent's log ends:\n${readFileSync(again.log, 'utf8').slice(-3000)}`);
      });
      await writer.stop();
      const end = primary.endLsn;
      const st = await until('the replica applied everything', async () => {
        const s = await replicationOf<{ appliedLsn: number; baseCopies: number; baseCopy: { done: boolean } }>(base, 'r');
        return s.appliedLsn >= end ? s : undefined;
      });
      assert.equal(st.baseCopies, 1);
      assert.deepEqual(readdirSync(root).filter((f) => f.startsWith(`r${n}.init-`)), [], 'the half copy was removed');
      again.child.kill('SIGTERM');
      await exited(again.child);
      await assertPagesEqual(primary, replicaDir);
    } finally {
      delete process.env.RA_FAULT;
      await primary.close();
    }
  });
  }

  it('a replica too far behind is refused, and re-initialised from a base copy only with autoReinit', async () => {
    const primary = await openPrimary(path.join(root, 'p3'));
    const replicaDir = path.join(root, 'r3');
    const { log } = captureLogger();
    const port = primary.replicationAddress!.port;
    const make = (autoReinit: boolean, refused: string[]) =>
      new ReplicaSession({ storeId: 'r', dir: replicaDir, engine: pagestore, host: '127.0.0.1', port, secret: SECRET, id: 'r3', log, autoReinit, onRefused: (_c, reason) => refused.push(reason) });
    try {
      await fill(primary, 'v0');
      let session = make(false, []);
      await session.start();
      await caughtUp(session, primary);
      await session.stop();
      // The primary moves on and retires the segments the stopped replica would need.
      for (let i = 0; i < 6; i++) {
        await fill(primary, `v${i + 1}`);
        await primary.checkpoint();
      }
      const refused: string[] = [];
      session = make(false, refused);
      await session.start();
      await until('the refusal', () => (session.status().state === 'refused' ? true : undefined));
      assert.match(refused[0] ?? '', /too far behind/);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(session.status().baseCopies, 0, 'no base copy without autoReinit');
      await session.stop();
      assert.deepEqual(readdirSync(root).filter((f) => f.startsWith('r3.replaced-')), []);

      const writer = runWriter(primary);
      session = make(true, []);
      await session.start();
      await until('the re-initialised replica streaming', () => (session.status().baseCopies === 1 && session.status().state === 'streaming' ? true : undefined));
      await writer.stop();
      await caughtUp(session, primary);
      await session.stop();
      const aside = readdirSync(root).filter((f) => f.startsWith('r3.replaced-'));
      assert.equal(aside.length, 1, 'the old store moved aside, not deleted');
      assert.ok(existsSync(path.join(root, aside[0]!, 'control')));
      await assertPagesEqual(primary, replicaDir);
    } finally {
      await primary.close();
    }
  });

  it('`replica init` makes the store, refuses to overwrite it, and with --force moves the old one aside', async () => {
    const primary = await openPrimary(path.join(root, 'p4'));
    const replicaDir = path.join(root, 'r4');
    try {
      await fill(primary, 'v0');
      writeFileSync(path.join(root, 'r4.secret'), SECRET + '\n', { mode: 0o600 });
      writeFileSync(
        path.join(root, 'r4.yaml'),
        `agent: { dataDir: ./r4-data }\nstores:\n  - id: r\n    path: ${replicaDir}\n    replication: { role: replica, primary: 127.0.0.1:${primary.replicationAddress!.port}, secretFile: ./r4.secret, id: r4 }\n`,
      );
      const args = ['replica', 'init', '--store', 'r', '--config', path.join(root, 'r4.yaml')];
      const first = await cliAsync([...args, '--json'], root);
      assert.equal(first.status, 0, first.stderr);
      const out = JSON.parse(first.stdout) as { pages: number; consistentLsn: number; redoLsn: number; replaced: string | null };
      assert.equal(out.pages, PAGES);
      assert.ok(out.consistentLsn >= out.redoLsn);
      assert.equal(out.replaced, null);
      // Every page verifies and the store opens as a replica whose position the primary accepts.
      const session = new ReplicaSession({ storeId: 'r', dir: replicaDir, engine: pagestore, host: '127.0.0.1', port: primary.replicationAddress!.port, secret: SECRET, id: 'r4', log: captureLogger().log, onRefused: () => undefined });
      await session.start();
      await caughtUp(session, primary);
      assert.equal(session.status().baseCopies, 0, 'the agent needed no copy of its own');
      await session.stop();
      await assertPagesEqual(primary, replicaDir);

      const again = await cliAsync(args, root);
      assert.equal(again.status, 2, again.stderr);
      assert.match(again.stderr, /already exists.*--force/);
      const forced = await cliAsync([...args, '--force'], root);
      assert.equal(forced.status, 0, forced.stderr);
      assert.match(forced.stdout, /old store moved to/);
      assert.match(forced.stderr, new RegExp(`base copy: ${PAGES}/${PAGES} pages`));
      const aside = readdirSync(root).filter((f) => f.startsWith('r4.replaced-'));
      assert.equal(aside.length, 1);
      assert.ok(existsSync(path.join(root, aside[0]!, 'control')), 'the old store kept whole');
      await assertPagesEqual(primary, replicaDir);
    } finally {
      await primary.close();
    }
  });

  it('a base copy the primary ends early (pages missing) or with a torn page is refused, and leaves nothing behind', async () => {
    const src = path.join(root, 'p5');
    await (await PageStore.open(src, { create: true, pageCount: 64, pageSize: PAGE, segmentSize: SEG, controlSocket: false })).close();
    const data = readFileSync(path.join(src, 'pages.db'));
    const info = { pageSize: PAGE, pageCount: 64, segmentSize: SEG, storeId: data.subarray(48, 64).toString('hex'), nextTxId: 1, walFrom: 64 };
    for (const [name, send] of [
      ['pages missing', (ch: Awaited<ReturnType<typeof openChannel>>) => {
        ch.send(basePageFrame(1, 0, 8, data.subarray(0, 8 * PAGE)));
        ch.send(baseEndFrame(1, 200));
      }],
      ['a torn page', (ch: Awaited<ReturnType<typeof openChannel>>) => {
        const torn = Buffer.from(data.subarray(0, 8 * PAGE));
        torn.fill(0x5a, 5 * PAGE + 100, 5 * PAGE + 4000);
        ch.send(basePageFrame(1, 0, 8, torn));
      }],
    ] as const) {
      const server = net.createServer((sock) => {
        void (async () => {
          const ch = await openChannel(sock, { role: 'primary', secret: SECRET });
          parseBaseRequest(await ch.next());
          ch.send(baseBeginFrame(1, { redoLsn: 64, checkpointLsn: 64, info }));
          send(ch);
          await ch.closed;
        })().catch(() => undefined);
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const dir = path.join(root, `r5-${name.replace(/ /g, '-')}`);
      try {
        const ch = await connectChannel({ host: '127.0.0.1', port: (server.address() as net.AddressInfo).port, secret: SECRET });
        await assert.rejects(pagestore.replica.initReplica(dir, ch, { id: 'r5', epoch: 1 }), (err: Error & { code?: string }) => err.code === 'RA_ERR_REPL_PROTOCOL', name);
        ch.close();
        assert.ok(!existsSync(dir), `${name}: no store`);
        assert.deepEqual(readdirSync(root).filter((f) => f.startsWith(`${path.basename(dir)}.init-`)), [], `${name}: nothing aside`);
      } finally {
        await new Promise((r) => server.close(r));
      }
    }
  });
});
