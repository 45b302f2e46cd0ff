/**
 * The `recovery-agent` command line. Each command lives in its own file; this one wires them
 * into commander and turns errors into exit codes (2 for bad config or usage, 1 otherwise); a
 * closed output pipe drops the output, not the command (brokenPipe.ts).
 *
 * Start-up cost is paid per command: this file and the command files import only commander and
 * the error catalogue, so `--help` and usage errors load nothing else; each command imports what
 * it needs (the agent, the config loader, a plugin's modules, the worker pool) inside its action.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { describeError } from '../core/errors.js';
import { dropOutputOnBrokenPipe } from './brokenPipe.js';
import { exitCodeFor } from './exitCode.js';
import { registerConfigCommands } from './configCommand.js';
import { registerInitCommand } from './initCommand.js';
import { registerRecoverCommand } from './recoverCommand.js';
import { registerRepairCommand } from './repairCommand.js';
import { registerRestoreCommand } from './restoreCommand.js';
import { registerRunCommand } from './runCommand.js';
import { registerScanCommand } from './scanCommand.js';
import { registerSnapshotCommands } from './snapshotCommand.js';
import { registerStatusCommand } from './statusCommand.js';

/** This package's version, from package.json (read here: core/agent.ts has it too, but loads the whole agent). */
export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

export function buildProgram(): Command {
  const program = new Command('recovery-agent')
    .description('Keeps a transactional page store alive and intact: detects crashes, hangs, corruption and exhaustion, and repairs them.')
    .version(packageVersion(), '-V, --version')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  registerRunCommand(program);
  registerInitCommand(program);
  registerConfigCommands(program);
  registerRecoverCommand(program);
  registerScanCommand(program);
  registerStatusCommand(program);
  registerSnapshotCommands(program);
  registerRestoreCommand(program);
  registerRepairCommand(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  dropOutputOnBrokenPipe();
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return process.exitCode === undefined ? 0 : Number(process.exitCode);
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end through here with exit code 0; usage errors were printed already.
      return err.exitCode === 0 ? 0 : 2;
    }
    process.stderr.write(`recovery-agent: ${describeError(err)}\n`);
    return await exitCodeFor(err);
  }
}
