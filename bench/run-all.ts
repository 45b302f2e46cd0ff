/**
 * `npm run bench`: every benchmark in turn, each in its own process (so one's heap and page
 * cache do not skew the next), stopping at the first that fails.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const benches = ['hash', 'ring', 'scan', 'cli', 'commit', 'redo', 'health', 'snapshot', 'repair'];
for (const name of benches) {
  const file = path.join(here, `${name}.js`);
  if (!existsSync(file)) {
    console.error(`bench ${name}: ${file} is missing (run npm run build:ts)`);
    process.exit(1);
  }
  console.log(`\n=== bench:${name}`);
  const r = spawnSync(process.execPath, [file, ...process.argv.slice(2)], { stdio: 'inherit' });
  if (r.status !== 0) {
    console.error(`bench ${name} failed (${r.signal ?? r.status})`);
    process.exit(1);
  }
}
