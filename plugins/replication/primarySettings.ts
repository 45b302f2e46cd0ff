/**
 * A primary store's replication settings for its owner: `<store>/replication.json` (mode 0600,
 * written atomically: temporary file, fsync, rename, directory fsync), the format the page
 * store's sender reads at open (plugins/pagestore/replicationConfig.ts; DESIGN.md "The owner's
 * side"). Written at the plugin's registration, which the plugin host runs before the crash
 * detector's (builtins order), so the supervised owner always starts with the current settings.
 */
import { rename } from 'node:fs/promises';
import path from 'node:path';
import { fsyncDir } from '../../core/fsyncDir.js';
import { openPrivate } from '../../core/privateFiles.js';
import { writeAll } from '../../core/writeAll.js';
import { raError } from '../../core/errors.js';
import type { MemberConfig, PrimaryConfig } from './configSection.js';
import { NO_CLUSTER_EPOCH } from './replicaSession.js';
import './errors.js';

export const SETTINGS_FILE = 'replication.json';

/** The file's content for `cfg` (the secret included: the file is 0600, as the store's files). */
export function primarySettings(cfg: PrimaryConfig | MemberConfig, secret: string): Record<string, unknown> {
  return {
    role: 'primary',
    listen: cfg.listen,
    secret,
    mode: cfg.mode,
    syncReplicas: cfg.syncReplicas,
    syncTimeoutMs: cfg.syncTimeoutMs,
    onSyncTimeout: cfg.onSyncTimeout,
    epoch: NO_CLUSTER_EPOCH,
  };
}

export async function writePrimarySettings(dir: string, settings: Record<string, unknown>): Promise<string> {
  const file = path.join(dir, SETTINGS_FILE);
  const tmp = `${file}.tmp`;
  try {
    const h = await openPrivate(tmp, 'w');
    try {
      await writeAll(h, Buffer.from(JSON.stringify(settings, null, 2) + '\n'), 0);
      await h.sync();
    } finally {
      await h.close();
    }
    await rename(tmp, file);
    await fsyncDir(dir);
  } catch (err) {
    throw raError('RA_ERR_REPL_SETTINGS', `cannot write ${file}: ${(err as Error).message}`, { cause: err });
  }
  return file;
}
