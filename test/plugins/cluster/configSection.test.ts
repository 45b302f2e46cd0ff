/** The `cluster:` section: defaults, and the refusals that keep a lease meaningful. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfigText } from '../../../cli/config.js';
import { isRaError } from '../../../core/errors.js';

const SRC = '/etc/ra/agent.yaml';

function configError(text: string): string {
  try {
    parseConfigText(text, SRC, {});
  } catch (err) {
    assert.ok(isRaError(err));
    return err.message;
  }
  assert.fail('expected the config to be refused');
}

describe('cluster config section', () => {
  it('is optional, and defaults what it can', () => {
    assert.equal(parseConfigText('{}\n', SRC, {}).cluster, undefined);
    const c = parseConfigText('cluster: { name: shop, etcd: [http://127.0.0.1:2379] }\n', SRC, {}).cluster!;
    assert.deepEqual(c, { name: 'shop', etcd: ['http://127.0.0.1:2379'], ttl: 10_000, size: 3, maxLagBytes: 16 * 2 ** 20, pollInterval: 1000 });
  });

  it('refuses a ttl etcd cannot grant, a margin that leaves no lease, bad URLs and unknown keys', () => {
    assert.match(configError('cluster: { name: s, etcd: [http://e:2379], ttl: 1500ms }\n'), /cluster\.ttl: expected whole seconds, at least 2s/);
    assert.match(configError('cluster: { name: s, etcd: [http://e:2379], ttl: 2s, renewMargin: 1s }\n'), /cluster\.renewMargin: expected a margin above 0 and under half the ttl/);
    assert.match(configError('cluster: { name: s, etcd: [e:2379] }\n'), /cluster\.etcd\[0\]: expected an etcd client URL/);
    assert.match(configError('cluster: { name: s, etcd: [] }\n'), /cluster\.etcd/);
    assert.match(configError('cluster: { name: s, etcd: [http://e:2379], leader: me }\n'), /cluster.*leader/);
    assert.match(configError('cluster: { name: s, etcd: [http://e:2379], pollInterval: 5s, ttl: 4s }\n'), /cluster\.pollInterval/);
  });
});
