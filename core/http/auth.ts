/**
 * Bearer-token check for mutating endpoints. Both sides are hashed first so the comparison is
 * constant-time whatever the lengths (timingSafeEqual needs equal lengths, and comparing lengths
 * first would leak the token's).
 */
import { createHash, timingSafeEqual } from 'node:crypto';

const digest = (s: string) => createHash('sha256').update(s).digest();

export function tokenMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer\s+(.+)$/i.exec(header ?? '');
  const given = digest(m?.[1]?.trim() ?? '');
  return timingSafeEqual(given, digest(token)) && m !== null;
}
