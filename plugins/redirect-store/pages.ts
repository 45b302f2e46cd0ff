/**
 * Every page of a store checked through its engine's page face, as a scan does it: with no lock,
 * safe while the store's owner writes — a page that fails is read again (3 times, 50 ms apart)
 * before it counts, since the owner may have been writing it.
 */
import { open } from 'node:fs/promises';
import type { PageEngine } from '../../core/contracts/PageEngine.js';
import { sleep } from '../../core/sleep.js';

/** Null when every page verifies; else what is wrong (the first bad page, or why the store cannot be read). */
export async function allPagesVerify(engine: PageEngine, dir: string): Promise<string | null> {
  let state;
  try {
    state = await engine.files.readState(dir);
  } catch (err) {
    return `its state cannot be read: ${(err as Error).message}`;
  }
  const fh = await open(engine.files.dataFile(dir), 'r').catch((e: Error) => e);
  if (fh instanceof Error) return `its data file cannot be opened: ${fh.message}`;
  try {
    for (let pageId = 0; pageId < state.pageCount; pageId++) {
      let fault: string | null = null;
      for (let attempt = 0; attempt < 3; attempt++) {
        fault = (await engine.pages.readPage(fh, pageId, state.pageSize)).fault;
        if (fault === null) break;
        await sleep(50);
      }
      if (fault !== null) return `page ${pageId}: ${fault}`;
    }
    return null;
  } finally {
    await fh.close();
  }
}
