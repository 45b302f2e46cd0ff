export * from './version.js';
export * from './Failure.js';
export * from './StorageEngine.js';
export * from './PageEngine.js';
export * from './Detector.js';
export * from './HealingAction.js';
export * from './HealthProbe.js';
export * from './Healer.js';
