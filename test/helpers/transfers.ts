import { prng } from './prng.js';

/** The seq-th transfer of the snapshot writer fixture: deterministic, so a test can replay it. */
export function transfer(seq: number, pages: number): { from: number; to: number; amount: bigint } {
  const r = prng(seq * 2654435761);
  const accounts = pages - 2;
  const from = 2 + (r() % accounts);
  const to = 2 + ((from - 2 + 1 + (r() % (accounts - 1))) % accounts);
  return { from, to, amount: BigInt(r() % 50) };
}

/** Balances (by page id) after the first `seq` transfers, every account starting at 1000. */
export function balancesAfter(seq: number, pages: number): Map<number, bigint> {
  const b = new Map<number, bigint>();
  for (let p = 2; p < pages; p++) b.set(p, 1000n);
  for (let s = 1; s <= seq; s++) {
    const t = transfer(s, pages);
    b.set(t.from, b.get(t.from)! - t.amount);
    b.set(t.to, b.get(t.to)! + t.amount);
  }
  return b;
}
