import { spawnSync } from 'node:child_process';
import { cpSync, lstatSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fixture } from './paths.js';

export function tmpStoreDir(prefix = 'ra-store-'): string {
  return path.join(mkdtempSync(path.join(os.tmpdir(), prefix)), 'store');
}

/** Runs the pagestoreKill fixture: commits, leaves losers, dies by SIGKILL. */
export function killedWriter(spec: { dir: string; commits: number; open: number; pages: number; pageSize?: number; segmentSize?: number; checkpointAfter?: number }): void {
  const r = spawnSync(process.execPath, [fixture('pagestoreKill.js'), JSON.stringify(spec)], { encoding: 'utf8', timeout: 60_000 });
  if (r.signal !== 'SIGKILL' || !r.stdout.includes('ready')) throw new Error(`fixture did not die as planned: ${r.signal ?? r.status} ${r.stderr}`);
}

/** The bytes of a store's data file. */
export function dataBytes(dir: string): Buffer {
  return readFileSync(path.join(dir, 'pages.db'));
}

/** Copies a store directory's files; its control socket (a live or a killed owner's) is no file to copy. */
export function copyStoreDir(from: string, to: string): void {
  cpSync(from, to, { recursive: true, filter: (src) => !lstatSync(src).isSocket() });
}
