export * from './schema.js';
export * from './section.js';
export * from './load.js';
export * from './units.js';
export * from './valueTypes.js';
