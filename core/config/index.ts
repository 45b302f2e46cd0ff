export * from './schema.js';
export * from './load.js';
export * from './units.js';
export { SAMPLE_CONFIG } from './sampleConfig.js';
