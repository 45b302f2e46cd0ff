/** Every fault family the chaos harness knows; a new family is one module added here. */
import { appHungWork } from './appHungWork.js';
import { bitFlips } from './bitFlips.js';
import { clockJump } from './clockJump.js';
import { deadlock } from './deadlock.js';
import { memoryLeak } from './memoryLeak.js';
import { diskFull } from './diskFull.js';
import { ioErrors } from './ioErrors.js';
import { signals } from './signals.js';
import { tornFiles } from './tornFiles.js';
import type { FaultFamily, FaultKind } from './types.js';

export const FAMILIES: readonly FaultFamily[] = [signals, bitFlips, tornFiles, diskFull, ioErrors, clockJump, memoryLeak, deadlock, appHungWork];

/** Families CI runs in their own short test (chaosProc.test.ts), not in chaos.test.ts: each run stays within 90 s. */
export const PROC_FAMILIES: ReadonlySet<string> = new Set([clockJump.name, memoryLeak.name, deadlock.name]);

/**
 * Kinds the agent has no detector for yet: their trials fail as "not detected", with the history
 * intact (chaos.test.ts asserts both). A mixed schedule leaves them out unless named: the damage
 * they leave stays in its one store for every later fault. None today: damage to the live WAL is
 * the corruption detector's WAL scrub (wal-corruption), to a snapshot or the WAL archive the
 * snapshot manager's integrity pass (snapshot-corruption / archive-corruption).
 */
export const KNOWN_GAPS: ReadonlySet<string> = new Set<string>([]);

export function allKinds(): Array<{ family: FaultFamily; kind: FaultKind }> {
  return FAMILIES.flatMap((family) => family.kinds.map((kind) => ({ family, kind })));
}
