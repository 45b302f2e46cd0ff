/**
 * The `exec` healing action: runs a command of the operator's, with a timeout. The failure is
 * passed as JSON in the environment (`RECOVERY_AGENT_FAILURE`). Exit 0 means applied. If the
 * step gives `verify: { command, args }`, that command's exit 0 means verified; otherwise the
 * action cannot observe its effect, and the recovery is recorded as applied-unverified.
 *
 *   do: [{ action: exec, options: { command: /usr/local/bin/fix-it, args: [--fast] }, timeout: 20s }]
 */
import { execFile } from 'node:child_process';
import { definePlugin } from '../../core/plugin.js';
import { HealingAction, isHealingAction, type HealingContext } from '../../core/contracts/HealingAction.js';
import type { Failure } from '../../core/contracts/Failure.js';
import { raError } from '../../core/errors.js';

interface CommandSpec {
  command: string;
  args?: string[];
  cwd?: string;
}

function commandFrom(value: unknown, where: string): CommandSpec {
  const v = value as Partial<CommandSpec> | undefined;
  if (!v || typeof v.command !== 'string' || v.command.length === 0 || (v.args !== undefined && !(Array.isArray(v.args) && v.args.every((a) => typeof a === 'string')))) {
    throw raError('RA_ERR_CONFIG', `${where} must be { command: string, args?: string[] } (got ${JSON.stringify(value)})`);
  }
  return v as CommandSpec;
}

function run(spec: CommandSpec, failure: Failure, ctx: HealingContext): Promise<{ stdout: string }> {
  return new Promise((resolve, reject) => {
    execFile(
      spec.command,
      spec.args ?? [],
      { signal: ctx.signal, cwd: spec.cwd, env: { ...process.env, RECOVERY_AGENT_FAILURE: JSON.stringify(failure) }, maxBuffer: 1 << 20 },
      (err, stdout, stderr) => {
        if (err) reject(raError('RA_ERR_USAGE', `${spec.command} failed: ${err.message}${stderr ? ` — ${stderr.trim().slice(0, 500)}` : ''}`, { cause: err }));
        else resolve({ stdout });
      },
    );
  });
}

export default definePlugin({
  id: 'exec-action',
  contractVersion: '^1.0.0',
  provides: [HealingAction],
  register(ctx) {
    const ran = new Set<string>();
    const action: HealingAction = {
      id: 'exec',
      canHandle: () => true,
      async apply(failure, hctx) {
        const spec = commandFrom(hctx.options, 'exec options');
        const { stdout } = await run(spec, failure, hctx);
        ran.add(failure.id);
        return { summary: `${spec.command} exited 0`, details: { stdout: stdout.slice(0, 2000) } };
      },
      async verify(failure, hctx) {
        // Without a check command, a successful run says nothing about the failure.
        if (hctx.options.verify === undefined) return ran.delete(failure.id) ? 'unobservable' : false;
        ran.delete(failure.id);
        try {
          await run(commandFrom(hctx.options.verify, 'exec options.verify'), failure, hctx);
          return true;
        } catch {
          return false;
        }
      },
    };
    ctx.provide(HealingAction, action, isHealingAction);
  },
});
