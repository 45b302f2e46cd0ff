#!/usr/bin/env node
// Entry point of the `recovery-agent` command. The TypeScript sources are compiled to dist/ by
// `npm run build` (run by `npm ci` through the prepare script).
import { existsSync } from 'node:fs';

const entry = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write('recovery-agent: dist/ is missing; run `npm run build` first\n');
  process.exit(1);
}
const { main } = await import(entry.href);
process.exitCode = await main(process.argv);
