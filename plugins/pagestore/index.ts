/**
 * The `pagestore` plugin: provides the reference engine behind the StorageEngine contract, so
 * stores with `engine: pagestore` can be described and recovered by the agent.
 */
import type { DependencyContainer } from 'tsyringe';
import { readArchiveLink } from './archiveLink.js';
import { definePlugin } from '../../core/plugin.js';
import { pagestoreErrors } from './errors.js';
import { StorageEngine, isStorageEngine } from '../../core/contracts/StorageEngine.js';
import { LogArchiverSource, type LogArchiver } from '../../core/contracts/PageEngine.js';
import { WorkerPool } from '../../core/tokens.js';
import { makePageStoreEngine } from './face.js';
import type { RecoverOptions } from './recovery.js';

/** The archiver for a store: from the archiving plugin, told the archive the store remembers. */
export async function archiverFor(container: DependencyContainer, storePath: string): Promise<LogArchiver | undefined> {
  if (!container.isRegistered(LogArchiverSource, true)) return undefined;
  return container.resolve<LogArchiverSource>(LogArchiverSource).archiverFor(storePath, await readArchiveLink(storePath));
}

export { PageStore, type PageStoreOptions, type CheckpointStats } from './pageStore.js';
export { AppActions, type AppAction, type AppActionOptions } from './appActions.js';
export { Transaction } from './transaction.js';
export { recover, recoveryProblem, type RecoverOptions, type RecoveryStats } from './recovery.js';
export { ControlClient } from './controlClient.js';
export { settleSwap, swapInStore } from './storeSwap.js';
export { superblockProblem } from './storeFiles.js';
export { processStartTime } from './storeLock.js';

/** The engine object, with its page face; usable without the agent too. */
export function pageStoreEngine(defaults: RecoverOptions = {}, archiverOf?: (storePath: string) => Promise<LogArchiver | undefined>) {
  return makePageStoreEngine(defaults, archiverOf);
}

export default definePlugin({
  id: 'pagestore',
  contractVersion: '^1.0.0',
  errorCodes: pagestoreErrors,
  deps: { pool: WorkerPool },
  provides: [StorageEngine],
  register(ctx, { pool }) {
    // The archiver is looked up at each recovery (the archiving plugin may start after this one);
    // a consumer that runs recoveries at start passes the archiver itself (transaction-rollback).
    ctx.provide(StorageEngine, pageStoreEngine({ pool, log: ctx.log }, (p) => archiverFor(ctx.container, p)), isStorageEngine);
  },
});
