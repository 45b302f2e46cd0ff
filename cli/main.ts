/**
 * The `recovery-agent` command line. Each command lives in its own file; this one wires them
 * into commander and turns errors into exit codes (2 for bad config or usage, 1 otherwise); a
 * closed output pipe drops the output, not the command (brokenPipe.ts). A command run with
 * `--json` that fails also writes its error to stdout, as JSON, for the script that asked for
 * JSON: `{"error":{"code":"RA_ERR_…","message":"…","exitCode":N}}` (code null for an error
 * outside the catalogue); the text stays on stderr, the exit code is the same. A command that
 * fails after working out its result (commandFailure.ts) ends the same way, and its --json
 * document carries the same `error` member.
 *
 * Start-up cost is paid per command: this file and the command files import only commander and
 * the error catalogue, so `--help` and usage errors load nothing else; each command imports what
 * it needs (the agent, the config loader, a plugin's modules, the worker pool) inside its action.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { describeError } from '../core/errors.js';
import { dropOutputOnBrokenPipe } from './brokenPipe.js';
import { jsonErrorMember, takeCommandFailure, type JsonErrorMember } from './commandFailure.js';
import { registerClusterCommands } from './clusterCommand.js';
import { registerConfigCommands } from './configCommand.js';
import { registerInitCommand } from './initCommand.js';
import { registerRecoverCommand } from './recoverCommand.js';
import { registerRepairCommand } from './repairCommand.js';
import { registerReplicaCommands } from './replicaCommand.js';
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
  registerReplicaCommands(program);
  registerClusterCommands(program);
  return program;
}

/** The error as the JSON line a `--json` command writes to stdout when it fails. */
function jsonError(error: JsonErrorMember): string {
  return `${JSON.stringify({ error })}\n`;
}

export async function main(argv: string[]): Promise<number> {
  dropOutputOnBrokenPipe();
  const program = buildProgram();
  // Known once commander has parsed the command's options; a usage error comes before that,
  // so then the arguments tell (a command without --json refuses it as a usage error too).
  let json: boolean | undefined;
  program.hook('preAction', (_program, command) => {
    json = command.opts<{ json?: boolean }>().json === true;
  });
  try {
    await program.parseAsync(argv);
    // A failure the command found after its result: its --json document carries it already.
    const failure = takeCommandFailure();
    if (failure) return await reportFailure(failure.err, false);
    return process.exitCode === undefined ? 0 : Number(process.exitCode);
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end through here with exit code 0; usage errors were printed already.
      if (err.exitCode === 0) return 0;
      if (json ?? argv.slice(2).includes('--json')) process.stdout.write(jsonError({ code: 'RA_ERR_USAGE', message: err.message.replace(/^error: /, ''), exitCode: 2 }));
      return 2;
    }
    return reportFailure(err, json ?? argv.slice(2).includes('--json'));
  }
}

/** Writes the error that ends a command: text on stderr and, with --json, the JSON line on stdout. Returns its exit code. */
async function reportFailure(err: unknown, json: boolean): Promise<number> {
  process.stderr.write(`recovery-agent: ${describeError(err)}\n`);
  const error = await jsonErrorMember(err);
  if (json) process.stdout.write(jsonError(error));
  return error.exitCode;
}
