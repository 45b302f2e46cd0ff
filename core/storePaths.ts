/**
 * The core's `StorePaths` (contracts/StorePaths.ts): the configured paths, overridden by the
 * redirects recorded in `<dataDir>/store-paths.json`. A redirect is written durably (temporary
 * file, fsync, rename, fsync of the directory) before it counts, because forgetting it would
 * send a restarted agent — and the application it starts — back to the failed disk. The agent
 * applies the recorded redirects to the config before any plugin registers, so after a restart
 * every plugin (scrub, health probes, snapshots) sees the store where it is.
 */
import { readFileSync } from 'node:fs';
import { rename } from 'node:fs/promises';
import path from 'node:path';
import type { AgentConfig } from './config/schema.js';
import type { StorePaths, StoreRedirect } from './contracts/StorePaths.js';
import { raError } from './errors.js';
import { fsyncDir } from './fsyncDir.js';
import { ensurePrivateDir, openPrivate } from './privateFiles.js';
import { writeAll } from './writeAll.js';

export const STORE_PATHS_FILE = 'store-paths.json';

export class StorePathsFile implements StorePaths {
  private readonly recorded: Record<string, StoreRedirect>;

  /** Reads the recorded redirects of `dataDir` (none when the file is missing); a damaged file is a config error, never ignored. */
  constructor(
    private readonly dataDir: string,
    private readonly configured: ReadonlyMap<string, string>,
  ) {
    const file = path.join(dataDir, STORE_PATHS_FILE);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      text = '{}';
    }
    const damaged = (why: string, cause?: unknown) =>
      raError('RA_ERR_CONFIG', `${file} cannot be read (${why}); it records where stores were moved after a disk failure: fix or delete it`, cause === undefined ? {} : { cause });
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw damaged((err as Error).message, err);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw damaged('expected an object of store ids');
    for (const [id, r] of Object.entries(parsed)) {
      if (typeof (r as StoreRedirect | null)?.path !== 'string' || !path.isAbsolute((r as StoreRedirect).path)) throw damaged(`store "${id}" has no absolute path`);
    }
    this.recorded = parsed as Record<string, StoreRedirect>;
  }

  /** `config` with each redirected store's path replaced by where it lives now. */
  applyTo(config: AgentConfig): AgentConfig {
    if (Object.keys(this.recorded).length === 0) return config;
    return { ...config, stores: config.stores.map((s) => (this.recorded[s.id] ? { ...s, path: this.recorded[s.id]!.path } : s)) };
  }

  pathOf(storeId: string): string | undefined {
    return this.recorded[storeId]?.path ?? this.configured.get(storeId);
  }

  redirects(): Readonly<Record<string, StoreRedirect>> {
    return structuredClone(this.recorded);
  }

  async redirect(storeId: string, to: string, reason: string): Promise<StoreRedirect> {
    const from = this.pathOf(storeId);
    if (from === undefined) throw raError('RA_ERR_USAGE', `no store "${storeId}" in the config`);
    const r: StoreRedirect = { path: path.resolve(to), from, at: Date.now(), reason };
    const next = { ...this.recorded, [storeId]: r };
    await ensurePrivateDir(this.dataDir);
    const file = path.join(this.dataDir, STORE_PATHS_FILE);
    const tmp = `${file}.tmp`;
    const h = await openPrivate(tmp, 'w');
    try {
      await writeAll(h, Buffer.from(`${JSON.stringify(next, null, 2)}\n`), 0);
      await h.sync();
    } finally {
      await h.close();
    }
    await rename(tmp, file);
    await fsyncDir(this.dataDir);
    this.recorded[storeId] = r;
    return r;
  }
}
