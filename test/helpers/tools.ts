import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

const found = new Map<string, boolean>();

/**
 * Fails the test, loudly and saying how to fix it, when the command-line tool `name` (an
 * independent oracle: xxhsum, the lz4 CLI) is not installed. A test that needs a tool never
 * passes by skipping; `.ci/run` installs them.
 */
export function needTool(name: string, debianPackage: string): void {
  if (!found.has(name)) found.set(name, spawnSync(name, ['--version'], { stdio: 'ignore' }).error === undefined);
  if (!found.get(name)) assert.fail(`this test needs the ${name} command as an independent oracle, and it is not installed: apt-get install -y ${debianPackage}`);
}
