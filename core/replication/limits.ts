/**
 * Limits of the replication handshake that configuration checks need without loading the
 * stream itself (protocol.ts re-exports them): a store reading its replication.json at open
 * must not pay for node:crypto and the frame codec when it does not replicate.
 */

/** Shortest secret accepted: 16 bytes (128 bits) of whatever the config holds. */
export const MIN_SECRET_BYTES = 16;
