import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sectionLines } from '../../cli/statusCommand.js';

describe('status as text: processes and health', () => {
  it('lists each supervised process with its pid, state and counts, and the health score with what is wrong', () => {
    const lines = sectionLines({
      processes: [
        { id: 'writer', state: 'running', pid: 4242, restarts: 1, crashes: 1, hangs: 0, cpuPercent: 12.4, rssBytes: 64 * 2 ** 20, store: 'demo', adopted: true },
        { id: 'web', state: 'backoff', pid: null, restarts: 3, crashes: 3, hangs: 1, cpuPercent: null, rssBytes: null },
      ],
      healthMonitor: {
        score: 71.6,
        level: 'degraded',
        components: [{ component: 'disk', score: 40 }, { component: 'cpu', score: 98 }],
        failingProbes: [{ id: 'store:demo', error: 'cannot read control file' }],
        predictions: [{ resource: 'disk:/var', alerting: true, etaSeconds: 5400, probability: 0.91 }, { resource: 'memory', alerting: false, etaSeconds: null, probability: 0.01 }],
      },
    });
    assert.deepEqual(lines, [
      'processes:',
      '  writer: running (pid 4242, adopted, store demo, 1 restart(s), 1 crash(es), 0 hang(s), cpu 12 %, rss 64 MiB)',
      '  web: backoff (3 restart(s), 3 crash(es), 1 hang(s))',
      'health: 72/100 degraded (disk 40, cpu 98)',
      '  ! probe store:demo: cannot read control file',
      '  ! disk:/var predicted to run out in 90 min (probability 0.91)',
    ]);
  });

  it('says nothing of sections the agent does not have', () => {
    assert.deepEqual(sectionLines({}), []);
  });
});
