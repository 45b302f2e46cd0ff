// A store's lock held by a zombie: the holder has exited (only its exit status waits for a parent
// that does not reap it), so the lock is stale — not "locked by process N" for ever.
// Real processes: `sh` starts `sleep 0` in the background and exec's into `sleep 5`, which
// never reaps it, so `sleep 0` stays a zombie for 5 s.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { acquireStoreLock, lockHolder } from '../../../plugins/pagestore/storeLock.js';
import { until } from '../../helpers/wait.js';

/** Field 3 (state) and field 22 (start time) of /proc/<pid>/stat, read here independently. */
function stat(pid: number): { state: string; start: string } | null {
  try {
    const t = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = t.slice(t.lastIndexOf(')') + 2).split(' ');
    return { state: f[0]!, start: f[19]! };
  } catch {
    return null;
  }
}

describe('store lock', () => {
  it('a lock whose holder is a zombie is stale: no holder, and it can be taken', async () => {
    const parent = spawn('sh', ['-c', 'sleep 0 & echo $!; exec sleep 5'], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      let out = '';
      parent.stdout.on('data', (d: Buffer) => (out += d.toString()));
      await until(() => out.includes('\n'), 5000, 'the zombie-to-be pid');
      const zombie = Number(out.trim());
      await until(() => stat(zombie)?.state === 'Z', 5000, `process ${zombie} to become a zombie`);
      const dir = mkdtempSync(path.join(os.tmpdir(), 'ra-lock-'));
      writeFileSync(path.join(dir, 'LOCK'), `${zombie}\n${stat(zombie)!.start}\n`);
      assert.equal(await lockHolder(dir), null);
      const lock = await acquireStoreLock(dir);
      assert.equal(readFileSync(path.join(dir, 'LOCK'), 'utf8').split('\n')[0], String(process.pid));
      await lock.release();

      // The same lock held by a live process (the non-reaping parent) is its holder's.
      writeFileSync(path.join(dir, 'LOCK'), `${parent.pid}\n${stat(parent.pid!)!.start}\n`);
      assert.equal(await lockHolder(dir), parent.pid);
      await assert.rejects(acquireStoreLock(dir), (e: Error & { code?: string }) => e.code === 'RA_ERR_STORE_LOCKED');
    } finally {
      parent.kill('SIGKILL');
    }
  });
});
