/**
 * The page store's engine, as the snapshot manager, the data repairer and the CLI reach it
 * (its page face): what tests pass to the functions that take an engine.
 */
import { makePageStoreEngine } from '../../plugins/pagestore/face.js';

export const pagestore = makePageStoreEngine();
