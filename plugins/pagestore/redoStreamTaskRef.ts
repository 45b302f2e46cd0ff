/**
 * The streaming redo's worker task (redoStream.ts runs it, redoStreamTask.ts is it), declared in a
 * module that loads nothing else: a restarting process names it as its pool's `preload`
 * (core/workerPool.ts) before it loads the page store (bench/fixtures/tpcbStore.ts,
 * cli/recoverCommand.ts).
 */
import { defineTask } from '../../core/taskRef.js';
import type { RedoResult } from './redoApply.js';
import type { RedoStreamTaskInput } from './redoStream.js';

export const redoStreamTask = defineTask<RedoStreamTaskInput, RedoResult>(new URL('./redoStreamTask.js', import.meta.url));
