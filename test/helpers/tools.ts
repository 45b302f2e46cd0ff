import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

const found = new Map<string, boolean>();

/** Whether the command-line tool `name` is installed (runs, on PATH). Asked once per process. */
export function haveTool(name: string): boolean {
  if (!found.has(name)) found.set(name, spawnSync(name, ['--version'], { stdio: 'ignore' }).error === undefined);
  return found.get(name)!;
}

/**
 * Fails the test, loudly and saying how to fix it, when the command-line tool `name` is not
 * installed. A test that needs a tool never passes by skipping. The XXH3 and LZ4 oracles do not
 * need it: `oracles.ts` falls back to npm packages when xxhsum or the lz4 CLI is absent.
 */
export function needTool(name: string, debianPackage: string): void {
  if (!haveTool(name)) assert.fail(`this test needs the ${name} command, and it is not installed: apt-get install -y ${debianPackage}`);
}
