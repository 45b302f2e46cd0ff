import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root, from dist/test/helpers/ (compiled) or test/helpers/ (sources). */
export function repoRoot(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  return here.includes(`${path.sep}dist${path.sep}`) ? path.resolve(here, '../../..') : path.resolve(here, '../..');
}

/** A compiled fixture in dist/test/fixtures/. */
export function fixture(name: string): string {
  return path.join(repoRoot(), 'dist', 'test', 'fixtures', name);
}
