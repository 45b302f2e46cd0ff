/**
 * The `page-corruption` failure's vocabulary, shared by those that publish it (the corruption
 * detector's scans, verify on read) and those that act on it (the data repairer), so neither
 * imports the other. Always P0; subject `store:<id>`; evidence `{ storeId, path, pages: [{
 * pageId, reason }] }`.
 */

export const PAGE_CORRUPTION = 'page-corruption';

/** A page named in a page-corruption failure. */
export interface CorruptPage {
  readonly pageId: number;
  readonly reason: string;
}

/** Evidence of a page-corruption failure. */
export interface PageCorruptionEvidence {
  readonly storeId: string;
  readonly path: string;
  readonly pages: readonly CorruptPage[];
  /** What found it: `scrub`, `scan`, `read` (verify on read), `recovery`. */
  readonly foundBy?: string;
}

/** Runtime check of a page-corruption failure's evidence (from any source). */
export function isPageCorruptionEvidence(v: unknown): v is PageCorruptionEvidence {
  const e = v as PageCorruptionEvidence | null;
  return typeof e === 'object' && e !== null && typeof e.storeId === 'string' && Array.isArray(e.pages) &&
    e.pages.every((p) => typeof p === 'object' && p !== null && Number.isInteger(p.pageId));
}
