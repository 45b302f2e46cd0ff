// A replica that cannot get a base copy backs off (ReplicaSession, kBaseCopyRetryFirstMs doubling
// to kBaseCopyRetryMaxMs), instead of trying again every 25 ms as after a lost connection: each try
// costs the primary a connection, a base-copy session and its log lines. The session's waits are
// counted on an injected clock (no timing in the test): a primary that answers the handshake and
// whose base copies fail, and an engine whose copy fails until told otherwise.
import assert from 'node:assert/strict';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { mkdtempSync } from 'node:fs';
import pino from 'pino';
import { describe, it } from 'node:test';
import type { PageEngine } from '../../../core/contracts/PageEngine.js';
import { raError } from '../../../core/errors.js';
import { openChannel, type ReplicationChannel } from '../../../core/replication/protocol.js';
import { ReplicaSession, baseCopyRetryMs } from '../../../plugins/replication/replicaSession.js';
import { until } from './agentHarness.js';

const SECRET = 'base-copy-retry-secret-0123456789';

/** A primary that completes the handshake of every connection and counts them. */
async function answeringPrimary(): Promise<{ port: number; connections: () => number; close(): Promise<void> }> {
  let n = 0;
  const channels: ReplicationChannel[] = [];
  const server = net.createServer((sock) => {
    n++;
    openChannel(sock, { role: 'primary', secret: SECRET, epoch: 1, timeoutMs: 2000 }).then((ch) => void channels.push(ch), () => sock.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    connections: () => n,
    close: async () => {
      for (const ch of channels) ch.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('a replica whose base copy fails', () => {
  it('the retry wait doubles from 25 ms to 5 s', () => {
    assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 50].map(baseCopyRetryMs), [25, 50, 100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
  });

  it('backs off between tries, counted on a fake clock, and starts again from 25 ms once a copy succeeded', async () => {
    const primary = await answeringPrimary();
    const dir = path.join(mkdtempSync(path.join(os.tmpdir(), 'ra-basecopy-retry-')), 'replica');
    // The copy fails while `copyWorks` is false; a copy that works leaves no store (a store removed
    // again, say) and the next round copies again.
    let copyWorks = false;
    let copies = 0;
    const engine = {
      files: { exists: () => false },
      replica: {
        initReplica: async () => {
          copies++;
          if (!copyWorks) throw raError('RA_ERR_REPL_PROTOCOL', 'this primary does not serve base copies');
          copyWorks = false;
          return { redoLsn: 64, consistentLsn: 64, pages: 1, epoch: 1 };
        },
        openReplica: async () => {
          throw raError('RA_ERR_STORE_INVALID', 'no store here');
        },
      },
    } as unknown as PageEngine;
    // The fake clock: each wait adds to it and returns at once, until `holdWhen` says to hold the
    // loop there (the test looks, then lets it go on).
    let fakeNow = 0;
    const waits: number[] = [];
    let holdWhen = (): boolean => fakeNow >= 10_000;
    let held: (() => void) | null = null;
    const session = new ReplicaSession({
      storeId: 'r',
      dir,
      engine,
      host: '127.0.0.1',
      port: primary.port,
      secret: SECRET,
      id: 'r1',
      log: pino({ level: 'silent' }),
      onRefused: () => undefined,
      sleep: async (ms, signal) => {
        waits.push(ms);
        fakeNow += ms;
        if (!holdWhen()) return new Promise((r) => setImmediate(r));
        await new Promise<void>((r) => {
          held = r;
          signal.addEventListener('abort', () => r(), { once: true });
        });
      },
    });
    const release = (): void => {
      const r = held!;
      held = null;
      r();
    };
    try {
      await session.start();
      // Ten seconds of the fake clock: at the lost-connection pace (25 ms) that was 400 tries.
      await until('ten fake seconds of tries', () => (held ? true : undefined));
      assert.equal(copies, 9, `${copies} base copies tried in ${fakeNow} fake ms (waits ${waits.join(', ')})`);
      assert.deepEqual(waits, [25, 50, 100, 200, 400, 800, 1600, 3200, 5000]);
      assert.ok(primary.connections() >= copies, 'each try reached the primary');
      // A copy that works resets the backoff: the next failure in a row is the first again. (The
      // round whose copy worked ends on a store that cannot be opened: a failure of its own kind.)
      copyWorks = true;
      const before = waits.length;
      holdWhen = () => waits.length >= before + 2;
      release();
      await until('the copy that works, then one that fails again', () => (held ? true : undefined));
      assert.equal(copies, 11);
      assert.equal(waits[before + 1], 25, `waits after the copy that worked: ${waits.slice(before).join(', ')}`);
    } finally {
      await session.stop();
      await primary.close();
    }
  });
});
