/**
 * A page source: somewhere a verified copy of one page of a store can be had, as of the end of
 * the store's log, for a repair to write in place of a corrupt page. The snapshot manager is one
 * (a snapshot's image brought forward by the log); a replica will be another. The data repairer
 * asks every source it finds under this token, in turn, and never knows how a source works.
 */
import type { InjectionToken } from 'tsyringe';
import type { LiveOwner, PageEngine } from './PageEngine.js';
import { createToken } from '../token.js';

/** The store a source is asked about. */
export interface PageSourceStore {
  /** The store's id in the config (the CLI, without a config, uses its resolved path). */
  readonly id: string;
  /** The store directory. */
  readonly path: string;
  /** The store's engine, through which the source reads its files and log. */
  readonly engine: PageEngine;
  /**
   * The store's live owner, when the repairer holds a connection to it: a source that reaches the
   * store through its owner (the replicas) asks on this one instead of connecting again. Not
   * to be closed by the source.
   */
  readonly owner?: LiveOwner;
}

/** One page's answer of `pagesFor`: a verified copy, or why this source cannot give it. */
export type SourcedPageResult = { readonly pageId: number; readonly page: SourcedPage; readonly error?: undefined } | { readonly pageId: number; readonly error: Error };

/** How a copy was made, for the repair's outcome and logs. */
export interface PageSourceAccount {
  /** What it came from, in words for people: `snapshot 20250101T…-F`, a replica's name. */
  readonly from: string;
  /** Log records applied to an older image to bring it to the end of the log (0: taken as is). */
  readonly recordsApplied: number;
  /** Whatever else the source tells (segments read, LSNs, …). */
  readonly [detail: string]: unknown;
}

/** A page from a source: sealed and verified, as of the end of the log the source saw. */
export interface SourcedPage {
  readonly image: Buffer;
  /** The page's LSN. */
  readonly lsn: number;
  /**
   * The live owner's durable LSN up to which every record for the page was applied, none missing
   * (the source took it from the owner before reading the log): the image is the page as of that
   * LSN. Handed to the owner with the image, which then needs no LSN from a torn header of the
   * bad copy.
   */
  readonly asOfLsn?: number;
  /** The source's name in the repair's outcome when more precise than its `id` (`replica:<id>`). */
  readonly source?: string;
  readonly account: PageSourceAccount;
}

export interface PageSource {
  /** Names the source in outcomes, metrics and messages (`snapshot`, `replica`). */
  readonly id: string;
  /**
   * A verified copy of page `pageId` of `store` as of the end of its log. Null when this source
   * keeps nothing of this store and has nothing to say about it; throws, saying why, when it
   * cannot give this page (no snapshots configured for the store, a gap in the log, …).
   */
  pageFor(store: PageSourceStore, pageId: number, signal?: AbortSignal): Promise<SourcedPage | null>;
  /**
   * Optional: `pageFor` for many pages of one store at once (a burst of corrupt pages), each page
   * answered apart, in the order named; null as `pageFor`'s (nothing kept of this store). A
   * source without it is asked page by page.
   */
  pagesFor?(store: PageSourceStore, pageIds: readonly number[], signal?: AbortSignal): Promise<SourcedPageResult[] | null>;
}

/** Token under which every page source is provided. */
export const PageSource: InjectionToken<PageSource> = createToken<PageSource>('recovery-agent.PageSource');

/** Runtime guard: true when `v` implements `PageSource`. */
export function isPageSource(v: unknown): v is PageSource {
  const s = v as PageSource | null;
  return typeof s === 'object' && s !== null && typeof s.id === 'string' && s.id.length > 0 && typeof s.pageFor === 'function';
}
