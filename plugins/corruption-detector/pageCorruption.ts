/**
 * The page-corruption vocabulary moved to a contract (core/contracts/pageCorruption.ts). This
 * re-export remains only for data-repairer until it is ported to contracts; delete it then.
 */
export * from '../../core/contracts/pageCorruption.js';
