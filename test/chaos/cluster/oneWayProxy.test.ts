// The fault proxy's asymmetric cut (faultProxy.ts `cutOneWay`), which `primary-cut-asymmetric`
// relies on: bytes stop in the cut direction only, on an open connection and on a new one, the
// other direction flows on, and `heal()` forwards both ways again.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startProxy, type FaultProxy } from '../../plugins/cluster/faultProxy.js';

/** A target that records what it received and lets the test write to its side of each connection. */
async function target(): Promise<{ port: number; got: () => string; sides: net.Socket[]; close(): Promise<void> }> {
  let got = '';
  const sides: net.Socket[] = [];
  const server = net.createServer((s) => {
    sides.push(s);
    s.on('data', (d) => (got += d.toString()));
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as net.AddressInfo).port, got: () => got, sides,
    close: async () => {
      for (const s of sides) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

async function connect(p: FaultProxy): Promise<{ socket: net.Socket; got: () => string }> {
  let got = '';
  const socket = net.connect(p.port, '127.0.0.1');
  socket.on('data', (d) => (got += d.toString()));
  socket.on('error', () => undefined);
  await new Promise<void>((r) => socket.once('connect', () => r()));
  return { socket, got: () => got };
}

describe('fault proxy: one-way cut', () => {
  const closers: Array<() => Promise<void>> = [];
  after(async () => {
    for (const c of closers.reverse()) await c();
  });

  for (const dir of ['to-target', 'from-target'] as const) {
    it(`${dir}: the cut direction stops, the other flows, on open and new connections; heal forwards again`, async () => {
      const t = await target();
      const p = await startProxy({ host: '127.0.0.1', port: t.port });
      closers.push(() => t.close(), () => p.close());
      const a = await connect(p);
      await sleep(100);
      assert.equal(t.sides.length, 1);
      p.cutOneWay(dir);
      assert.ok(p.isCut);
      a.socket.write('up1');
      t.sides[0]!.write('down1');
      await sleep(200);
      assert.equal(t.got(), dir === 'to-target' ? '' : 'up1');
      assert.equal(a.got(), dir === 'from-target' ? '' : 'down1');
      // A connection made during the cut.
      const b = await connect(p);
      await sleep(150);
      assert.equal(t.sides.length, 2, 'a new connection reaches the target');
      b.socket.write('up2');
      t.sides[1]!.write('down2');
      await sleep(200);
      assert.equal(t.got().includes('up2'), dir === 'from-target');
      assert.equal(b.got(), dir === 'from-target' ? '' : 'down2');
      p.heal();
      assert.equal(p.isCut, false);
      const c = await connect(p);
      await sleep(100);
      c.socket.write('up3');
      await sleep(150);
      t.sides.at(-1)!.write('down3');
      await sleep(150);
      assert.ok(t.got().endsWith('up3'));
      assert.equal(c.got(), 'down3');
      for (const s of [a, b, c]) s.socket.destroy();
    });
  }
});
