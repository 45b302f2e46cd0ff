#!/usr/bin/env node
// Entry point of the `recovery-agent` command. The TypeScript sources are compiled to dist/ by
// `npm run build` (run by `npm ci` through the prepare script).
//
// `recovery-agent --version` is answered here, from package.json, before the command line
// (commander) loads: it needs nothing else, and scripts call it to probe the install. Every other
// invocation, `--version` with anything beside it included, goes to dist/cli/main.js.
import { existsSync, readFileSync } from 'node:fs';

const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  // A reader that has gone away (`… | head -0`) is no reason for a stack trace.
  process.stdout.on('error', (err) => {
    if (err.code !== 'EPIPE') throw err;
  });
  const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  process.stdout.write(`${version}\n`);
} else {
  const entry = new URL('../dist/cli/main.js', import.meta.url);
  if (!existsSync(entry)) {
    process.stderr.write('recovery-agent: dist/ is missing; run `npm run build` first\n');
    process.exit(1);
  }
  const { main } = await import(entry.href);
  process.exitCode = await main(process.argv);
}
