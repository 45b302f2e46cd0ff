/**
 * The `pagestore` plugin: provides the reference engine behind the StorageEngine contract, so
 * stores with `engine: pagestore` can be described and recovered by the agent.
 */
import type { DependencyContainer, InjectionToken } from 'tsyringe';
import { readArchiveLink } from './archiveLink.js';
import { definePlugin, optional } from '../../core/plugin.js';
import { createToken } from '../../core/token.js';
import { StorageEngine, isStorageEngine, type StoreDescription } from '../../core/contracts/StorageEngine.js';
import { WorkerPool } from '../../core/tokens.js';
import { readControl } from './control.js';
import { recover, type RecoverOptions, type RecoveryStats } from './recovery.js';
import type { WalArchiver } from './checkpoint.js';

/** Offered by a plugin that archives WAL (snapshot-manager): the archiver for a store, if any. */
export interface WalArchiverSource {
  /**
   * The archiver for the store at `storePath`: the one its config names, else one for
   * `remembered` (the archive the store itself remembers, archiveLink.ts), else none.
   */
  archiverFor(storePath: string, remembered?: string | null): WalArchiver | undefined;
}
export const WalArchiverSource: InjectionToken<WalArchiverSource> = createToken<WalArchiverSource>('pagestore.WalArchiverSource');

/** The archiver for a store: from the archiving plugin, told the archive the store remembers. */
export async function archiverFor(container: DependencyContainer, storePath: string): Promise<WalArchiver | undefined> {
  if (!container.isRegistered(WalArchiverSource, true)) return undefined;
  return container.resolve<WalArchiverSource>(WalArchiverSource).archiverFor(storePath, await readArchiveLink(storePath));
}

export { PageStore, type PageStoreOptions, type CheckpointStats } from './pageStore.js';
export { Transaction } from './transaction.js';
export { recover, recoveryProblem, type RecoverOptions, type RecoveryStats } from './recovery.js';
export { ControlClient } from './controlClient.js';
export { settleSwap, swapInStore } from './storeSwap.js';
export { superblockProblem } from './storeFiles.js';
export { processStartTime } from './storeLock.js';

/** The engine object; usable without the agent too. */
export function pageStoreEngine(defaults: RecoverOptions = {}, archiverOf?: (storePath: string) => Promise<WalArchiver | undefined>): StorageEngine & { recover(storePath: string, options?: RecoverOptions): Promise<RecoveryStats> } {
  return {
    name: 'pagestore',
    async describe(storePath: string): Promise<StoreDescription> {
      const c = await readControl(storePath);
      return { engine: 'pagestore', path: storePath, pageSize: c.pageSize, pageCount: c.pageCount };
    },
    recover: async (storePath: string, options: RecoverOptions = {}) => {
      const archiver = await archiverOf?.(storePath);
      return recover(storePath, { ...defaults, ...(archiver ? { archiver } : {}), ...options });
    },
  };
}

export default definePlugin({
  id: 'pagestore',
  contractVersion: '^1.0.0',
  // The archiving plugin (snapshot-manager) starts first, so that even the recoveries at start
  // archive the WAL they retire.
  deps: { pool: WorkerPool, archivers: optional(WalArchiverSource) },
  provides: [StorageEngine],
  register(ctx, { pool, archivers }) {
    ctx.provide(StorageEngine, pageStoreEngine({ pool, log: ctx.log }, async (p) => archivers?.archiverFor(p, await readArchiveLink(p))), isStorageEngine);
  },
});
