// Worker-pool task: redo of one partition of pages (see redoApply.ts).
import { applyRedo, type RedoInput, type RedoResult } from './redoApply.js';

export default function redo(input: RedoInput): RedoResult {
  return applyRedo(input);
}
