/**
 * The log's rolling checksum, in a module of its own: the WAL writer folds every record it
 * appends, and a store that does not replicate should not load the replication stream
 * (frames, sealing, the handshake) to get this one function. frames.ts re-exports it.
 */
import { xxh3 } from 'recovery-agent/native';

/**
 * The rolling checksum of a log (DESIGN.md "Position"): `R ← XXH3-64(R ‖ checksum)`, both as
 * little-endian u64, folded over every record's own trailing checksum in LSN order; R is 0 before
 * the first record. Two logs with the same R at the same LSN hold the same records (up to a
 * 64-bit collision); a replica whose R differs from its primary's at its LSN diverged.
 */
export function roll(r: bigint, recordChecksum: bigint): bigint {
  rollScratch.writeBigUInt64LE(r, 0);
  rollScratch.writeBigUInt64LE(recordChecksum, 8);
  return xxh3(rollScratch);
}

/** `roll`'s 16 bytes, reused: the WAL writer folds every record it appends. */
const rollScratch = Buffer.alloc(16);
