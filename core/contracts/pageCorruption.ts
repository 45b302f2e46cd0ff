/**
 * The `page-corruption` failure, in one place: what the corruption detector publishes for pages
 * its scans find, and what other parts of the agent publish when a page they read fails its
 * check (verify on read, e.g. crash recovery failing with RA_ERR_PAGE_CORRUPT). A contract, so
 * that publishers and consumers (the repairer, the health monitor) share the vocabulary without
 * importing each other.
 *
 * Always P0 (data at risk). Subject `store:<id>`. Evidence `{ storeId, path, pages: [{ pageId,
 * reason }] }`. The fingerprint names the pages, so two failures about different pages of one
 * store are two problems to the orchestrator, and the same pages reported twice are one.
 */
import type { FailureInput } from './Failure.js';

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

export function pageCorruptionFailure(evidence: PageCorruptionEvidence): FailureInput {
  const pages = [...evidence.pages].sort((a, b) => a.pageId - b.pageId);
  return {
    kind: PAGE_CORRUPTION,
    priority: 'P0',
    subject: `store:${evidence.storeId}`,
    evidence: { ...evidence, pages: pages.map((p) => ({ pageId: p.pageId, reason: p.reason })) },
    fingerprint: `${PAGE_CORRUPTION}|store:${evidence.storeId}|pages:${pages.map((p) => p.pageId).join(',')}`,
  };
}

/**
 * The pages named by an RA_ERR_PAGE_CORRUPT error's details: `{ pages: [{ pageId, reason }] }`
 * (redo) or `{ pageId, reason }` (a single read). Empty when it names none.
 */
export function corruptPagesOf(details: Readonly<Record<string, unknown>>): CorruptPage[] {
  const isPage = (v: unknown): v is CorruptPage =>
    typeof v === 'object' && v !== null && Number.isInteger((v as CorruptPage).pageId) && typeof (v as CorruptPage).reason === 'string';
  if (Array.isArray(details.pages)) return details.pages.filter(isPage).map((p) => ({ pageId: p.pageId, reason: p.reason }));
  return isPage(details) ? [{ pageId: details.pageId, reason: details.reason }] : [];
}

/** Runtime check of a page-corruption failure's evidence (from any source). */
export function isPageCorruptionEvidence(v: unknown): v is PageCorruptionEvidence {
  const e = v as PageCorruptionEvidence | null;
  return typeof e === 'object' && e !== null && typeof e.storeId === 'string' && Array.isArray(e.pages) &&
    e.pages.every((p) => typeof p === 'object' && p !== null && Number.isInteger(p.pageId));
}
