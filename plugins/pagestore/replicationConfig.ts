/**
 * `<store>/replication.json`: a store's replication settings, written by the agent (mode 0600)
 * from `stores[].replication` before it starts the owner, and read by `PageStore.open`
 * (plugins/replication/DESIGN.md, "The owner's side"). Reading it at open, rather than being
 * told by the agent, means a sync store never acknowledges a commit before its replicas have it,
 * even while the agent is down.
 *
 *   { "role": "primary", "listen": "127.0.0.1:7400", "secret": "…", "mode": "sync",
 *     "syncReplicas": 1, "syncTimeoutMs": 10000, "onSyncTimeout": "block", "epoch": 1,
 *     "fenced": false, "fenceWaitMs": 30000 }
 *
 * Only `role`, `listen` and `secret` are required. A file that does not parse or holds a wrong
 * value fails the open with RA_ERR_REPL_CONFIG: a primary that silently did not replicate would
 * acknowledge commits its operator believes are on replicas.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { raError } from '../../core/errors.js';
import { MIN_SECRET_BYTES } from '../../core/replication/limits.js';
import './errors.js';

export const REPLICATION_FILE = 'replication.json';

export interface PrimaryReplicationConfig {
  role: 'primary';
  host: string;
  port: number;
  secret: string;
  mode: 'async' | 'sync';
  /** Sync: how many replicas must have a commit durable before it is acknowledged. */
  syncReplicas: number;
  /** Sync: how long commits wait for enough replicas before `onSyncTimeout` applies. */
  syncTimeoutMs: number;
  /** Sync: keep waiting (`block`, the default: RPO 0) or acknowledge after the local flush (`degrade`). */
  onSyncTimeout: 'block' | 'degrade';
  epoch: number;
  /** How often a keepalive goes to each replica. */
  keepaliveMs: number;
  /** Log kept for a connected replica that is behind, at most (bytes behind the flushed end). */
  maxRetainBytes: number;
  /** Clustered (#15): commits are acknowledged only while the agent's lease grant is valid (commitFence.ts). */
  fenced: boolean;
  /** Clustered: how long a commit waits for a lease grant before RA_ERR_FENCED. */
  fenceWaitMs: number;
}

/** The store's replication settings: a primary's, `{ role: 'replica' }` (nothing for the owner to do), or null without the file. */
export async function readReplicationConfig(dir: string): Promise<PrimaryReplicationConfig | { role: 'replica' } | null> {
  const file = path.join(dir, REPLICATION_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw raError('RA_ERR_REPL_CONFIG', `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  return parseReplicationConfig(text, file);
}

export function parseReplicationConfig(text: string, file = REPLICATION_FILE): PrimaryReplicationConfig | { role: 'replica' } {
  const bad = (what: string) => raError('RA_ERR_REPL_CONFIG', `${file}: ${what}`, { details: { file } });
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw bad(`not JSON (${(err as Error).message})`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad('expected a JSON object');
  const o = v as Record<string, unknown>;
  const known = new Set(['role', 'listen', 'secret', 'mode', 'syncReplicas', 'syncTimeoutMs', 'onSyncTimeout', 'epoch', 'keepaliveMs', 'maxRetainBytes', 'fenced', 'fenceWaitMs', 'primary']);
  for (const k of Object.keys(o)) if (!known.has(k)) throw bad(`unknown field ${JSON.stringify(k)}`);
  if (o.role === 'replica') return { role: 'replica' };
  if (o.role !== 'primary') throw bad(`"role" must be "primary" or "replica" (got ${JSON.stringify(o.role)})`);
  if (typeof o.listen !== 'string') throw bad('"listen" must be "host:port" (a string)');
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(o.listen);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw bad(`"listen" must be "host:port" or "[ipv6]:port" with a port from 0 to 65535 (got ${JSON.stringify(o.listen)})`);
  if (typeof o.secret !== 'string' || Buffer.byteLength(o.secret) < MIN_SECRET_BYTES) throw bad(`"secret" must be a string of at least ${MIN_SECRET_BYTES} bytes`);
  const mode = o.mode ?? 'async';
  if (mode !== 'async' && mode !== 'sync') throw bad(`"mode" must be "async" or "sync" (got ${JSON.stringify(mode)})`);
  const int = (name: string, def: number, min: number, max: number): number => {
    const x = o[name] ?? def;
    if (!Number.isSafeInteger(x) || (x as number) < min || (x as number) > max) throw bad(`"${name}" must be an integer from ${min} to ${max} (got ${JSON.stringify(o[name])})`);
    return x as number;
  };
  const onSyncTimeout = o.onSyncTimeout ?? 'block';
  if (onSyncTimeout !== 'block' && onSyncTimeout !== 'degrade') throw bad(`"onSyncTimeout" must be "block" or "degrade" (got ${JSON.stringify(onSyncTimeout)})`);
  if (o.fenced !== undefined && typeof o.fenced !== 'boolean') throw bad(`"fenced" must be true or false (got ${JSON.stringify(o.fenced)})`);
  return {
    role: 'primary',
    host: m[1] ?? m[2]!,
    port,
    secret: o.secret,
    mode,
    syncReplicas: int('syncReplicas', 1, 1, 64),
    syncTimeoutMs: int('syncTimeoutMs', 10_000, 1, 24 * 3600_000),
    onSyncTimeout,
    epoch: int('epoch', 1, 0, Number.MAX_SAFE_INTEGER),
    keepaliveMs: int('keepaliveMs', 1000, 10, 3600_000),
    maxRetainBytes: int('maxRetainBytes', 1024 ** 3, 0, Number.MAX_SAFE_INTEGER),
    fenced: o.fenced === true,
    fenceWaitMs: int('fenceWaitMs', 30_000, 1, 24 * 3600_000),
  };
}
