/** `recovery-agent init [FILE]`: writes a commented sample config. */
import { existsSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { raError } from '../core/errors.js';

export function registerInitCommand(program: Command): void {
  program
    .command('init')
    .description('write a commented sample config to FILE (or print it when FILE is omitted)')
    .argument('[file]', 'where to write the config')
    .option('-f, --force', 'overwrite FILE if it exists')
    .addHelpText('after', '\nExit codes: 0 written (or printed); 2 FILE exists and --force was not given, or bad usage.')
    .action(async (file: string | undefined, opts: { force?: boolean }) => {
      const { SAMPLE_CONFIG } = await import('./sampleConfig.js');
      if (!file) {
        process.stdout.write(SAMPLE_CONFIG);
        return;
      }
      if (existsSync(file) && !opts.force) {
        throw raError('RA_ERR_USAGE', `${file} already exists; pass --force to overwrite it`);
      }
      writeFileSync(file, SAMPLE_CONFIG, { mode: 0o640 });
      process.stdout.write(`wrote ${file}; check it with: recovery-agent config check ${file}\n`);
    });
}
