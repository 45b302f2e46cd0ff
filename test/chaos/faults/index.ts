/** Every fault family the chaos harness knows; a new family is one module added here. */
import { bitFlips } from './bitFlips.js';
import { diskFull } from './diskFull.js';
import { ioErrors } from './ioErrors.js';
import { signals } from './signals.js';
import { tornFiles } from './tornFiles.js';
import type { FaultFamily, FaultKind } from './types.js';

export const FAMILIES: readonly FaultFamily[] = [signals, bitFlips, tornFiles, diskFull, ioErrors];

export function allKinds(): Array<{ family: FaultFamily; kind: FaultKind }> {
  return FAMILIES.flatMap((family) => family.kinds.map((kind) => ({ family, kind })));
}
