// The control socket is never connectable by another user, not even for the moment after it is
// bound: real processes under umask 000 serve and close it again and again while user nobody
// tries to connect in a tight loop. The same prober against a socket open to everyone must get
// replies, so a prober that cannot connect at all would fail the test rather than pass it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { controlSocketOf } from '../../../plugins/pagestore/controlSocket.js';
import { nobody, startProber, type OtherUser } from '../../helpers/otherUser.js';
import { fixture } from '../../helpers/paths.js';

const CYCLES = 200;

/** A base directory every user may traverse (mkdtemp makes it 0700). */
function openBase(): string {
  const base = mkdtempSync(path.join(os.tmpdir(), 'ra-sockperm-'));
  chmodSync(base, 0o755);
  return base;
}

/** Runs the cycling fixture to its end; resolves to what it printed. */
function cycle(dir: string, mode: 'socket' | 'store'): Promise<{ cycles: number; served: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [fixture('controlSocketCycles.js'), JSON.stringify({ dir, cycles: CYCLES, mode })], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim()) as { cycles: number; served: number }) : reject(new Error(`controlSocketCycles exited ${code}: ${err}`))));
  });
}

describe('control socket access by another user', () => {
  let user: OtherUser;
  let base: string;

  before(() => {
    user = nobody();
    base = openBase();
  });

  it('the prober, as nobody, does get replies from a socket open to everyone (the control)', async () => {
    const dir = path.join(base, 'open');
    mkdirSync(dir, { mode: 0o777 });
    chmodSync(dir, 0o777);
    const file = path.join(dir, 'control.sock');
    const server = net.createServer((s) => s.on('data', () => s.end('{"ok":true,"status":{}}\n')));
    await new Promise<void>((resolve) => server.listen(file, resolve));
    chmodSync(file, 0o777);
    try {
      const p = await startProber(user, file);
      await new Promise((r) => setTimeout(r, 300));
      const r = await p.stop();
      assert.equal(r.uid, user.uid);
      assert.ok(r.replies > 0, `nobody got no reply from a world-open socket: ${JSON.stringify(r)}`);
    } finally {
      server.close();
    }
  });

  for (const mode of ['socket', 'store'] as const) {
    const what = mode === 'socket' ? 'serveControl in a directory open to everyone (0777)' : 'a store whose directory is 0777, opened and closed';
    it(`${what}, ${CYCLES} times under umask 000: nobody never connects`, async () => {
      const dir = path.join(base, mode);
      mkdirSync(dir, { mode: 0o777 });
      chmodSync(dir, 0o777);
      const p = await startProber(user, controlSocketOf(dir));
      const done = await cycle(dir, mode).catch(async (err: unknown) => {
        await p.stop();
        throw err;
      });
      const r = await p.stop();
      assert.deepEqual(done, { cycles: CYCLES, served: CYCLES }, 'the owner reached its own socket every time');
      assert.ok(r.attempts > CYCLES, `the prober kept trying: ${JSON.stringify(r)}`);
      assert.equal(r.connects, 0, `nobody connected: ${JSON.stringify(r)}`);
      assert.equal(r.replies, 0, `nobody got status replies: ${JSON.stringify(r)}`);
    });
  }
});
