// Shared by the point-in-time restore tests (pitr*.test.ts): a small store, one-page commits.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { PageStore } from '../../../plugins/pagestore/pageStore.js';
import { cli } from '../../helpers/cli.js';

export const PAGES = 64;
export const PAGE = 4096;
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const storeOptions = { create: true, pageCount: PAGES, pageSize: PAGE, segmentSize: 65536, checkpointIntervalMs: 0 } as const;

/** One one-page transaction; returns its id and its commit record's end. */
export async function commitOne(s: PageStore, i: number, tag: string): Promise<{ txId: number; end: number }> {
  const tx = s.begin();
  await tx.write(1 + ((i * 7) % (PAGES - 1)), (i * 13) % 2000, Buffer.from(`${tag}-${i};`.repeat(8)));
  await tx.commit();
  return { txId: tx.id, end: s.endLsn };
}

export async function commits(s: PageStore, n: number, tag: string): Promise<{ txId: number; end: number }> {
  let last = { txId: 0, end: 0 };
  for (let i = 0; i < n; i++) last = await commitOne(s, i, tag);
  return last;
}

/** Every data page's payload as the store sees it now, read through the engine. */
export async function pagesNow(s: PageStore): Promise<Buffer[]> {
  const tx = s.begin();
  const out: Buffer[] = [Buffer.alloc(0)];
  for (let id = 1; id < PAGES; id++) out.push(Buffer.from(await tx.read(id)));
  await tx.commit();
  return out;
}

/** Pages of a restored store whose payload differs from `ref`. */
export function differing(dir: string, ref: Buffer[]): number[] {
  const data = readFileSync(path.join(dir, 'pages.db'));
  const bad: number[] = [];
  for (let id = 1; id < PAGES; id++) if (!data.subarray(id * PAGE + 32, (id + 1) * PAGE).equals(ref[id]!)) bad.push(id);
  return bad;
}

export interface RestoreJson {
  stoppedAt: { lsn: number; endLsn: number; txId: number; time: number | null } | null;
  targetLsn: number | null;
  snapshots: string[];
}

export function restore(snaps: string, to: string, ...args: string[]): { status: number | null; stdout: string; stderr: string } {
  return cli(['restore', '--snapshot-dir', snaps, '--to', to, '--no-progress', ...args]);
}

export function restoreJson(snaps: string, to: string, ...args: string[]): RestoreJson {
  const r = restore(snaps, to, '--json', ...args);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as RestoreJson;
}
