// HangWatch (plugins/crash-detector/heartbeat.ts) when the agent itself was late: found by the
// chaos harness (agent-sigkill: a restarted agent, busy starting its plugins for over a second,
// called the healthy writer it had just adopted hung and restarted it — "heartbeats resumed"
// 4 ms later: the heartbeats were there, unread). A timer that fires late must not judge before
// the datagrams that arrived meanwhile are read.
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { HangWatch } from '../../../plugins/crash-detector/heartbeat.js';

function busy(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // the agent's loop, stalled (a long synchronous start, a SIGSTOP)
  }
}

describe('HangWatch', () => {
  it('reads the heartbeats that came while its own loop stalled past the timeout before calling a hang', async () => {
    const receiver = dgram.createSocket('udp4');
    const sender = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => receiver.bind(0, '127.0.0.1', resolve));
    const port = receiver.address().port;
    let hangs = 0;
    const watch = new HangWatch(100, () => hangs++);
    receiver.on('message', () => watch.beat());
    try {
      watch.start();
      // The datagram reaches the socket; then this process stalls three timeouts long.
      await new Promise<void>((resolve) => sender.send(Buffer.from('beat'), port, '127.0.0.1', () => (busy(300), resolve())));
      await sleep(50);
      assert.equal(hangs, 0, 'a heartbeat waited in the socket: no hang');
    } finally {
      watch.stop();
      receiver.close();
      sender.close();
    }
  });

  it('still calls real silence a hang, once', async () => {
    let hangs = 0;
    const watch = new HangWatch(50, () => hangs++);
    watch.start();
    await sleep(200);
    watch.stop();
    assert.equal(hangs, 1);
  });
});
