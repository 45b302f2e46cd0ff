/**
 * `recovery-agent config check FILE` and `recovery-agent config schema`: both against the core's
 * sections composed with the built-in plugins' (config.ts), which loads their section modules
 * only, not the plugins.
 */
import type { Command } from 'commander';

export function registerConfigCommands(program: Command): void {
  const config = program.command('config').description('check a config file or print its JSON Schema');
  config
    .command('check')
    .description('validate a config file (the schema; each store holds a store or is written by a configured process; plugin modules exist); exits 0 when valid, 2 with the key path of each problem when not')
    .argument('<file>', 'the YAML config file')
    .option('--json', 'print the validated config (defaults applied, units parsed) as JSON')
    .addHelpText('after', '\nExit codes: 0 valid; 2 invalid (every problem, each under its key path), or the file cannot be read.')
    .action(async (file: string, opts: { json?: boolean }) => {
      const [{ loadConfigFile }, { assertNoConfigProblems }] = await Promise.all([import('./config.js'), import('./configProblems.js')]);
      const cfg = loadConfigFile(file);
      assertNoConfigProblems(cfg);
      if (opts.json) process.stdout.write(JSON.stringify(cfg, null, 2) + '\n');
      else process.stdout.write(`${cfg.source}: valid (${cfg.stores.length} store(s), ${cfg.plugins.length} plugin(s))\n`);
    });
  config
    .command('schema')
    .description('print the JSON Schema of the config file, for editors')
    .addHelpText('after', '\nExit codes: 0 printed.')
    .action(async () => {
      const { configJsonSchema } = await import('./config.js');
      process.stdout.write(JSON.stringify(configJsonSchema(), null, 2) + '\n');
    });
}
