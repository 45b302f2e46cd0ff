/**
 * Test helpers: a store made through the library API, and damage done to its data file with a
 * seeded PRNG, remembering which pages were hit and the reason a scan must give for each.
 */
import { openSync, closeSync, readSync, writeSync } from 'node:fs';
import path from 'node:path';
import { PageStore } from '../../../plugins/pagestore/pageStore.js';
import { sealPage } from '../../../plugins/pagestore/format.js';
import type { CorruptReason } from '../../../plugins/corruption-detector/reasons.js';
import { prng } from '../../helpers/prng.js';


/** A store with `pages` pages, every data page written by a committed transaction, closed cleanly. */
export async function makeStore(dir: string, pages: number, pageSize = 4096): Promise<void> {
  const store = await PageStore.open(dir, { create: true, pageCount: pages, pageSize, checkpointIntervalMs: 0 });
  try {
    for (let first = 1; first < pages; first += 32) {
      const tx = store.begin();
      for (let p = first; p < Math.min(pages, first + 32); p++) await tx.write(p, 0, Buffer.from(`page ${p} `.repeat(20)));
      await tx.commit();
    }
  } finally {
    await store.close();
  }
}

/** Where a bit is flipped, and the reason the scan must report for it. */
export const TARGETS: ReadonlyArray<{ name: string; offset: (pageSize: number) => number; span: number; reason: CorruptReason }> = [
  { name: 'checksum itself', offset: () => 0, span: 8, reason: 'checksum' },
  { name: 'magic', offset: () => 8, span: 4, reason: 'magic' },
  { name: 'version', offset: () => 12, span: 2, reason: 'version' },
  { name: 'page type', offset: () => 14, span: 2, reason: 'checksum' },
  { name: 'page id', offset: () => 16, span: 4, reason: 'page-id' },
  { name: 'reserved', offset: () => 20, span: 4, reason: 'checksum' },
  { name: 'page LSN', offset: () => 24, span: 8, reason: 'checksum' },
  { name: 'first payload byte', offset: () => 32, span: 1, reason: 'checksum' },
  { name: 'last payload byte', offset: (ps) => ps - 1, span: 1, reason: 'checksum' },
];

/**
 * Flips one random bit in each of `count` distinct random data pages (never page 0), cycling
 * through TARGETS so every kind is hit. Returns pageId → expected reason.
 */
export function flipBits(dir: string, pageSize: number, pageCount: number, count: number, seed: number): Map<number, CorruptReason> {
  const next = prng(seed);
  const hit = new Map<number, CorruptReason>();
  const fd = openSync(path.join(dir, 'pages.db'), 'r+');
  try {
    const byte = Buffer.alloc(1);
    for (let i = 0; hit.size < count; i++) {
      const pageId = 1 + (next() % (pageCount - 1));
      if (hit.has(pageId)) continue;
      const t = TARGETS[i % TARGETS.length]!;
      const at = pageId * pageSize + t.offset(pageSize) + (next() % t.span);
      readSync(fd, byte, 0, 1, at);
      byte[0]! ^= 1 << (next() % 8);
      writeSync(fd, byte, 0, 1, at);
      hit.set(pageId, t.reason);
    }
  } finally {
    closeSync(fd);
  }
  return hit;
}

/** Rewrites a page with `edit` applied and a fresh checksum: damage only the header checks see. */
export function resealPage(dir: string, pageSize: number, pageId: number, edit: (page: Buffer) => void): void {
  const fd = openSync(path.join(dir, 'pages.db'), 'r+');
  try {
    const page = Buffer.alloc(pageSize);
    readSync(fd, page, 0, pageSize, pageId * pageSize);
    edit(page);
    sealPage(page);
    writeSync(fd, page, 0, pageSize, pageId * pageSize);
  } finally {
    closeSync(fd);
  }
}

/** Copies page `from` over page `to`, as a misdirected write would. */
export function misdirect(dir: string, pageSize: number, from: number, to: number): void {
  const fd = openSync(path.join(dir, 'pages.db'), 'r+');
  try {
    const page = Buffer.alloc(pageSize);
    readSync(fd, page, 0, pageSize, from * pageSize);
    writeSync(fd, page, 0, pageSize, to * pageSize);
  } finally {
    closeSync(fd);
  }
}
