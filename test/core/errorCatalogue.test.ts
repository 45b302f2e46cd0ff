import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { builtinErrorCatalogues } from '../../cli/builtinErrors.js';
import { builtinPlugins } from '../../cli/builtins.js';
import { CoreErrorCodes, defineErrorCodes, errorCodeDefinition, exitCodeOf, isErrorCode, isRaError, raError } from '../../core/errors.js';

/** Every code of the catalogue before plugins owned theirs, with its exit code then: none may change. */
const EXIT_BEFORE: Record<string, number> = {
  RA_ERR_CONFIG: 2, RA_ERR_USAGE: 2, RA_ERR_PLUGIN_LOAD: 1, RA_ERR_PLUGIN_CONTRACT: 1, RA_ERR_PLUGIN_DUPLICATE: 1,
  RA_ERR_PLUGIN_MISSING_DEPENDENCY: 1, RA_ERR_PLUGIN_CYCLE: 1, RA_ERR_PLUGIN_START: 1, RA_ERR_PLUGIN_TIMEOUT: 1,
  RA_ERR_PLUGIN_CRASHED: 1, RA_ERR_PLUGIN_MEMORY: 1, RA_ERR_PLUGIN_ISOLATION: 1, RA_ERR_PLUGIN_UNAVAILABLE: 1,
  RA_ERR_CONTRACT: 1, RA_ERR_TASK_PAYLOAD: 1, RA_ERR_POOL_CLOSED: 1, RA_ERR_RING: 1, RA_ERR_NATIVE_MISSING: 1,
  RA_ERR_AGENT_STATE: 1, RA_ERR_STORE_LOCKED: 3, RA_ERR_STORE_NOT_FOUND: 2, RA_ERR_STORE_INVALID: 2,
  RA_ERR_STORE_OPTIONS: 2, RA_ERR_STORE_CLOSED: 1, RA_ERR_PAGE_RANGE: 1, RA_ERR_PAGE_CORRUPT: 4, RA_ERR_DEADLOCK: 1,
  RA_ERR_TX_STATE: 1, RA_ERR_WAL_RECORD_TOO_LARGE: 1, RA_ERR_WAL_WRITE: 1, RA_ERR_WAL_CORRUPT: 4,
  RA_ERR_SNAPSHOT_CORRUPT: 4, RA_ERR_SNAPSHOT_INVALID: 2, RA_ERR_WAL_GAP: 4, RA_ERR_WAL_NOT_ARCHIVED: 1,
  RA_ERR_RESTORE_TARGET: 2, RA_ERR_CONTROL_UNAVAILABLE: 3, RA_ERR_CONTROL: 1, RA_ERR_REPAIR_NO_SOURCE: 4,
  RA_ERR_REPAIR_REFUSED: 4, RA_ERR_PROCESS_SPAWN: 1, RA_ERR_PROCESS_STATE: 1, RA_ERR_PROCESS_GIVEN_UP: 1,
};

describe('error codes contributed by plugins', () => {
  it('every code keeps its exit code, now that plugins own theirs', () => {
    for (const [code, exit] of Object.entries(EXIT_BEFORE)) {
      assert.ok(isErrorCode(code), `${code} is registered`);
      assert.equal(exitCodeOf(code), exit, code);
      assert.equal(raError(code as never, 'x').exitCode, exit, code);
    }
  });

  it('the WAL, snapshot and process codes belong to the plugins that raise them, not to the core', () => {
    const owners: Record<string, string> = {
      RA_ERR_WAL_CORRUPT: 'pagestore', RA_ERR_WAL_WRITE: 'pagestore', RA_ERR_DEADLOCK: 'pagestore', RA_ERR_CONTROL_UNAVAILABLE: 'pagestore',
      RA_ERR_SNAPSHOT_CORRUPT: 'snapshot-manager', RA_ERR_WAL_GAP: 'snapshot-manager', RA_ERR_RESTORE_TARGET: 'snapshot-manager',
      RA_ERR_REPAIR_NO_SOURCE: 'data-repairer', RA_ERR_PROCESS_GIVEN_UP: 'crash-detector',
      RA_ERR_PAGE_CORRUPT: 'core', RA_ERR_STORE_LOCKED: 'core', RA_ERR_CONFIG: 'core',
    };
    for (const [code, owner] of Object.entries(owners)) {
      assert.equal(errorCodeDefinition(code)?.owner, owner, code);
      assert.equal(Object.hasOwn(CoreErrorCodes, code), owner === 'core', `${code} in core/errors.ts`);
    }
    assert.match(errorCodeDefinition('RA_ERR_WAL_GAP')!.description, /WAL chain from a snapshot/);
  });

  it('refuses a code defined again with another meaning, registering nothing of that catalogue', () => {
    const refused = (fn: () => unknown, pattern: RegExp) =>
      assert.throws(fn, (err: unknown) => isRaError(err, 'RA_ERR_PLUGIN_CONFLICT') && pattern.test(err.message));
    refused(
      () => defineErrorCodes('acme-engine', { RA_ERR_ACME_FRESH: { exit: 1, description: 'A fresh code.' }, RA_ERR_WAL_CORRUPT: { exit: 2, description: 'The log is bad.' } }),
      /error code "RA_ERR_WAL_CORRUPT" of "acme-engine" \(exit 2: The log is bad\.\) is already defined by "pagestore" with another meaning \(exit 4: /,
    );
    assert.equal(isErrorCode('RA_ERR_ACME_FRESH'), false, 'a refused catalogue registers none of its codes');
    const { exit, description } = errorCodeDefinition('RA_ERR_PAGE_CORRUPT')!;
    refused(() => defineErrorCodes('acme-engine', { RA_ERR_PAGE_CORRUPT: { exit, description: `${description} Or not.` } }), /already defined by "core"/);
    // Two plugins each defining a new code the same way: the second is refused if it means something else.
    defineErrorCodes('acme-one', { RA_ERR_ACME_SHARED: { exit: 3, description: 'Shared by two acme plugins.' } });
    refused(() => defineErrorCodes('acme-two', { RA_ERR_ACME_SHARED: { exit: 1, description: 'Shared by two acme plugins.' } }), /already defined by "acme-one"/);
  });

  it('accepts the same meaning again: a second engine raising a code of the core, or a module loaded twice', () => {
    const { exit, description } = errorCodeDefinition('RA_ERR_PAGE_CORRUPT')!;
    const again = defineErrorCodes('acme-engine', { RA_ERR_PAGE_CORRUPT: { exit, description } });
    assert.equal(again.owner, 'acme-engine');
    assert.equal(errorCodeDefinition('RA_ERR_PAGE_CORRUPT')!.owner, 'core', 'the first owner stays');
    assert.equal(exitCodeOf('RA_ERR_PAGE_CORRUPT'), 4);
  });

  it('refuses a malformed code or exit code', () => {
    const malformed = (codes: Record<string, { exit: number; description: string }>, pattern: RegExp) =>
      assert.throws(() => defineErrorCodes('acme', codes), (err: unknown) => isRaError(err, 'RA_ERR_PLUGIN_LOAD') && pattern.test(err.message));
    malformed({ ACME_BAD: { exit: 1, description: 'x' } }, /expected RA_ERR_ and uppercase words/);
    malformed({ RA_ERR_acme: { exit: 1, description: 'x' } }, /expected RA_ERR_ and uppercase words/);
    malformed({ RA_ERR_ACME_EXIT: { exit: 0, description: 'x' } }, /exit must be an integer from 1 to 125 \(got 0\)/);
    malformed({ RA_ERR_ACME_EXIT: { exit: 1, description: '' } }, /expected a description/);
  });

  it('a code no loaded catalogue defines exits 1, like any unexpected error', () => {
    assert.equal(isErrorCode('RA_ERR_NOBODY_DEFINES_THIS'), false);
    assert.equal(exitCodeOf('RA_ERR_NOBODY_DEFINES_THIS'), 1);
  });

  it('the light list of built-in catalogues is the one the built-in plugins declare', () => {
    const declared = builtinPlugins.flatMap((p) => (p.errorCodes ? [p.errorCodes] : []));
    assert.deepEqual(new Set(builtinErrorCatalogues), new Set(declared));
    for (const p of builtinPlugins) if (p.errorCodes) assert.equal(p.errorCodes.owner, p.id);
  });
});
