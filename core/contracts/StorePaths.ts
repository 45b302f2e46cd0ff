/**
 * Where each configured store lives now. The config's `stores[].path` is where it starts; the
 * redirect-store action moves a store whose disk failed to its spare path, and from then on this
 * service names the spare (durably: a restarted agent reads it back from its dataDir). The core
 * provides it; the process supervisor hands the path to a store's application in
 * `RECOVERY_AGENT_STORE_PATH`, so the application finds its store wherever it was moved.
 */
import type { InjectionToken } from 'tsyringe';
import { createToken } from '../token.js';

/** The environment variable a supervised process with `store:` receives: that store's current path. */
export const STORE_PATH_ENV = 'RECOVERY_AGENT_STORE_PATH';

/** A store moved away from its configured path. */
export interface StoreRedirect {
  /** The path it lives at now (absolute). */
  readonly path: string;
  /** The path it was moved from. */
  readonly from: string;
  /** ms since the epoch. */
  readonly at: number;
  readonly reason: string;
}

export interface StorePaths {
  /** The store's current path: its redirect's, else the config's; undefined for an unknown id. */
  pathOf(storeId: string): string | undefined;
  /** Every redirect in force, by store id. */
  redirects(): Readonly<Record<string, StoreRedirect>>;
  /** Moves the store to `to` for good: durable (in the agent's dataDir) before it resolves. */
  redirect(storeId: string, to: string, reason: string): Promise<StoreRedirect>;
}

/** Token under which the core registers its `StorePaths`. */
export const StorePaths: InjectionToken<StorePaths> = createToken<StorePaths>('recovery-agent.StorePaths');
