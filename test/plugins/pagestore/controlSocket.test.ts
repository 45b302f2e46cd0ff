// Where the control socket lives and how it survives its owner: run/control.sock in the store
// directory, reachable whatever the length of the store's path, and a socket left by an owner
// killed with SIGKILL answers nothing but is replaced by the next owner.
import assert from 'node:assert/strict';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { isRaError } from '../../../core/errors.js';
import { ControlClient } from '../../../plugins/pagestore/controlClient.js';
import { MAX_SOCKET_PATH, controlSocketOf } from '../../../plugins/pagestore/controlSocket.js';
import { PageStore } from '../../../plugins/pagestore/pageStore.js';
import { captureLogger } from '../../helpers/logCapture.js';
import { killedWriter, tmpStoreDir } from '../../helpers/store.js';

describe('control socket location', () => {
  it('is run/control.sock in the store directory, and is removed on close', async () => {
    const dir = tmpStoreDir();
    const store = await PageStore.open(dir, { create: true, pageCount: 8, pageSize: 4096, checkpointIntervalMs: 0 });
    try {
      assert.equal(controlSocketOf(dir), path.join(dir, 'run', 'control.sock'));
      assert.ok(lstatSync(controlSocketOf(dir)).isSocket());
      assert.equal((await ControlClient.with(dir, (c) => c.status())).pid, process.pid);
    } finally {
      await store.close();
    }
    assert.equal(existsSync(controlSocketOf(dir)), false);
  });

  it('is served and reached when the store path is longer than a socket address holds', async () => {
    const dir = path.join(mkdtempSync(path.join(os.tmpdir(), 'ra-longpath-')), 'x'.repeat(100), 'store');
    assert.ok(Buffer.byteLength(controlSocketOf(dir)) > MAX_SOCKET_PATH);
    const logs = captureLogger();
    const store = await PageStore.open(dir, { create: true, pageCount: 8, pageSize: 4096, checkpointIntervalMs: 0, log: logs.log });
    try {
      assert.deepEqual(logs.lines().filter((l) => l.level === 40), [], 'no warning: the socket is served');
      assert.ok(lstatSync(controlSocketOf(dir)).isSocket(), 'at its full path');
      assert.equal((await ControlClient.with(dir, (c) => c.status())).pid, process.pid);
    } finally {
      await store.close();
    }
    assert.equal(existsSync(controlSocketOf(dir)), false);
  });

  it("a killed owner's socket is refused with RA_ERR_CONTROL_UNAVAILABLE, then replaced by the next owner", async () => {
    const dir = tmpStoreDir();
    killedWriter({ dir, commits: 5, open: 1, pages: 16 });
    assert.ok(lstatSync(controlSocketOf(dir)).isSocket(), 'SIGKILL left the socket behind');
    await assert.rejects(ControlClient.connect(dir), (e: unknown) => isRaError(e, 'RA_ERR_CONTROL_UNAVAILABLE') && /ECONNREFUSED.*the store's owner is not running/.test(e.message));
    const store = await PageStore.open(dir, { checkpointIntervalMs: 0 });
    try {
      assert.equal((await ControlClient.with(dir, (c) => c.status())).pid, process.pid);
    } finally {
      await store.close();
    }
  });

  it('refuses to serve in a run/ that is a symlink, says why, and changes nothing where it points', async () => {
    const dir = tmpStoreDir();
    const s0 = await PageStore.open(dir, { create: true, pageCount: 8, pageSize: 4096, checkpointIntervalMs: 0 });
    await s0.close();
    // A directory open to everyone, as /tmp is: neither tightened nor given a socket.
    const elsewhere = path.join(path.dirname(dir), 'elsewhere');
    mkdirSync(elsewhere);
    chmodSync(elsewhere, 0o1777);
    rmSync(path.join(dir, 'run'), { recursive: true });
    symlinkSync(elsewhere, path.join(dir, 'run'));
    const logs = captureLogger();
    const store = await PageStore.open(dir, { checkpointIntervalMs: 0, log: logs.log });
    try {
      const warn = logs.lines().find((l) => l.msg === 'cannot serve the store control socket; the agent cannot checkpoint or repair this store while it is open');
      assert.ok(warn, 'a warning names the problem');
      assert.match(String(warn.err), /ELOOP|ENOTDIR/);
      await assert.rejects(ControlClient.connect(dir), (e: unknown) => isRaError(e, 'RA_ERR_CONTROL_UNAVAILABLE'));
      assert.equal(existsSync(path.join(elsewhere, 'control.sock')), false, 'nothing was bound through the symlink');
      assert.equal((statSync(elsewhere).mode & 0o7777).toString(8), '1777', 'what the symlink points at was not tightened');
    } finally {
      await store.close();
    }
  });
});
