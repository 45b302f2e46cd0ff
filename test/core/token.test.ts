import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isRaError } from '../../core/errors.js';
import { createToken, tokenId, tokenOf } from '../../core/token.js';
import * as tokens from '../../core/tokens.js';

describe('createToken', () => {
  it('refuses a second token with an id already made, naming where each was made', () => {
    const first = createToken<number>('token-test.Twice');
    assert.equal(tokenId(first), 'token-test.Twice');
    assert.throws(
      () => createToken<string>('token-test.Twice'),
      (err: unknown) => {
        if (!isRaError(err, 'RA_ERR_PLUGIN_LOAD')) return false;
        const { first: a, second: b } = err.details as { first: string; second: string };
        // Both places are lines of this file, and they differ.
        return /token\.test\.js:\d+:\d+$/.test(a) && /token\.test\.js:\d+:\d+$/.test(b) && a !== b && err.message.includes(a) && err.message.includes(b) && /"token-test\.Twice" is made twice/.test(err.message);
      },
    );
  });

  it('refuses an id without a namespace, naming the form expected', () => {
    assert.throws(() => createToken('WorkerPool'), (err: unknown) => isRaError(err, 'RA_ERR_PLUGIN_LOAD') && /"<namespace>\.<Name>"/.test(err.message));
    assert.throws(() => createToken('Acme.pager'), (err: unknown) => isRaError(err, 'RA_ERR_PLUGIN_LOAD'));
  });

  it('makes the symbol another copy of the package, or a plugin process given the id, makes too', async () => {
    const here = createToken<number>('token-test.Shared');
    // A second instance of the module, as a plugin that bundles its own copy of recovery-agent would load.
    const copy = (await import(`../../core/token.js?copy=${process.pid}`)) as typeof import('../../core/token.js');
    assert.notEqual(copy.createToken, createToken, 'a distinct module instance');
    assert.equal(copy.createToken('token-test.Shared'), here, 'the copy agrees on the token and keeps its own registry');
    assert.equal(tokenOf('token-test.Shared'), here);
    assert.equal(tokenOf(tokenId(tokens.WorkerPool)), tokens.WorkerPool);
  });

  it('gives every core token a distinct recovery-agent id', () => {
    const ids = Object.values(tokens).map((t) => tokenId(t));
    assert.ok(ids.length >= 8);
    assert.ok(ids.every((id) => id.startsWith('recovery-agent.')));
    assert.equal(new Set(ids).size, ids.length);
  });
});
