/**
 * Replacing a store directory with another one (restore --force), so that a crash at any point
 * leaves either the old store or the new one at the target, and never nothing — and so that a
 * store opened at the target after a crash is never an empty one made in the gap.
 *
 * The swap, for a complete, verified store in `staging`:
 *   1. `staging/SWAP` names the target and where the old store goes aside (durable);
 *   2. the old store, if any, is renamed aside (`<to>.replaced-<pid>`);
 *   3. `staging` is renamed to the target; the parent directory is fsynced;
 *   4. the old store is removed, then `<to>/SWAP`.
 *
 * `settleSwap(to)`, run before a store is opened, recovered or restored over, finishes an
 * interrupted swap: after step 3 it does step 4; between steps 2 and 3 (the target missing, a
 * staging directory whose SWAP names it) it does steps 3 and 4. Before step 2 the old store is
 * still in place and the staging directory is only a leftover: nothing is done, since the old
 * store may have been written to since.
 */
import { existsSync } from 'node:fs';
import { open, readFile, readdir, rename, rm, unlink } from 'node:fs/promises';
import path from 'node:path';
import { raError } from '../../core/errors.js';
import { writeAll } from '../../core/writeAll.js';
import { fsyncDir } from '../../core/fsyncDir.js';
import { faultPoint } from './faults.js';

export const SWAP_MARKER = 'SWAP';

interface SwapPlan {
  to: string;
  aside: string;
}

/** Makes the store in `staging` the store at `to`, replacing what is there (see above). */
export async function swapInStore(staging: string, to: string): Promise<void> {
  const plan: SwapPlan = { to: path.resolve(to), aside: `${path.resolve(to)}.replaced-${process.pid}` };
  const h = await open(path.join(staging, SWAP_MARKER), 'w', 0o600);
  try {
    await writeAll(h, Buffer.from(JSON.stringify(plan) + '\n'), 0);
    await h.datasync();
  } finally {
    await h.close();
  }
  await fsyncDir(staging);
  const parent = path.dirname(plan.to);
  if (existsSync(plan.to)) {
    await rename(plan.to, plan.aside);
    faultPoint('swap-between-renames');
  }
  await rename(staging, plan.to);
  await fsyncDir(parent);
  await finish(plan);
}

/**
 * Finishes a swap a crash interrupted at `to` (see above). Returns what it did; throws
 * RA_ERR_STORE_INVALID when the target is missing and only the replaced store is left.
 */
export async function settleSwap(to: string): Promise<'none' | 'finished' | 'completed'> {
  const target = path.resolve(to);
  const inPlace = await readPlan(path.join(target, SWAP_MARKER));
  if (inPlace?.to === target) {
    await finish(inPlace);
    return 'finished';
  }
  if (existsSync(target)) return 'none';
  const parent = path.dirname(target);
  const base = path.basename(target);
  const siblings = (await readdir(parent).catch(() => [] as string[])).filter((n) => n.startsWith(`${base}.`));
  for (const name of siblings) {
    const plan = await readPlan(path.join(parent, name, SWAP_MARKER));
    if (plan?.to !== target) continue;
    await rename(path.join(parent, name), target);
    await fsyncDir(parent);
    await finish(plan);
    return 'completed';
  }
  const replaced = siblings.filter((n) => n.startsWith(`${base}.replaced-`));
  if (replaced.length > 0) {
    throw raError(
      'RA_ERR_STORE_INVALID',
      `${target} is missing but ${path.join(parent, replaced[0]!)} holds the store a restore was replacing, and no finished restore is there to complete it; rename it back to ${target} or restore again`,
      { details: { path: target, replaced: replaced.map((n) => path.join(parent, n)) } },
    );
  }
  return 'none';
}

async function finish(plan: SwapPlan): Promise<void> {
  await rm(plan.aside, { recursive: true, force: true });
  await unlink(path.join(plan.to, SWAP_MARKER)).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
  await fsyncDir(plan.to);
}

async function readPlan(file: string): Promise<SwapPlan | null> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return null;
  }
  try {
    const p = JSON.parse(text) as Partial<SwapPlan>;
    // The only thing a marker may have removed is the target's own `.replaced-<pid>` sibling.
    if (typeof p.to === 'string' && typeof p.aside === 'string' && path.isAbsolute(p.to) && /^\.replaced-\d+$/.test(p.aside.slice(p.to.length)) && p.aside.startsWith(p.to)) {
      return { to: p.to, aside: p.aside };
    }
  } catch {
    // A marker cut short: written before step 2, so nothing was renamed yet.
  }
  return null;
}
