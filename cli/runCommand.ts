/**
 * `recovery-agent run [--config FILE]`: the daemon. The config is `--config`, else
 * `$RECOVERY_AGENT_CONFIG`, else /etc/recovery-agent/agent.yaml (where deploy/'s unit puts it). Starts the agent, logs one line when ready,
 * and on SIGINT or SIGTERM stops everything in reverse order and exits 0. A second Ctrl-C
 * (SIGINT more than a second after the first) while stopping exits at once with 1.
 */
import { existsSync } from 'node:fs';
import type { Command } from 'commander';

/** Where `run` looks for its config when neither --config nor RECOVERY_AGENT_CONFIG names one. */
export const DEFAULT_CONFIG = '/etc/recovery-agent/agent.yaml';

/** The config file `run` uses: --config, else $RECOVERY_AGENT_CONFIG, else the default path if it exists. */
export async function configFileFor(given: string | undefined, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  if (given) return given;
  if (env.RECOVERY_AGENT_CONFIG) return env.RECOVERY_AGENT_CONFIG;
  if (existsSync(DEFAULT_CONFIG)) return DEFAULT_CONFIG;
  const { raError } = await import('../core/errors.js');
  throw raError('RA_ERR_USAGE', `no config: give --config FILE, set RECOVERY_AGENT_CONFIG, or put one at ${DEFAULT_CONFIG} (\`recovery-agent init FILE\` writes a sample)`);
}

export function registerRunCommand(program: Command): void {
  program
    .command('run')
    .description('run the agent until SIGINT or SIGTERM')
    .option('-c, --config <file>', `the YAML config file (default: $RECOVERY_AGENT_CONFIG, else ${DEFAULT_CONFIG})`)
    .addHelpText('after', '\nExit codes: 0 stopped cleanly on SIGINT or SIGTERM; 2 bad usage or config (each problem named), or agent.http.listen\ncannot be bound (a port in use), checked before anything starts; 1 an error while stopping, or a second Ctrl-C while stopping; a failure at start exits with the\ncode of its error.')
    .action(async (opts: { config?: string }) => {
      const configFile = await configFileFor(opts.config);
      // The agent first: it loads reflect-metadata, which tsyringe needs before it is imported.
      const { Agent } = await import('../core/agent.js');
      const [{ builtinPlugins }, { loadConfigFile }, { createLogger }, { assertNoConfigProblems }] = await Promise.all([
        import('./builtins.js'),
        import('./config.js'),
        import('../core/logger.js'),
        import('./configProblems.js'),
      ]);
      const config = loadConfigFile(configFile);
      // A typo'd store path is refused before anything starts (a missing plugin module is that
      // plugin failed, as for any third-party plugin that cannot load).
      assertNoConfigProblems(config, { plugins: false });
      const log = createLogger({ level: config.agent.logLevel, format: config.agent.logFormat });
      const agent = new Agent({ config, builtins: builtinPlugins, log });
      // A daemon must not end because its plugins happen to hold no ref'd handle (piscina's
      // workers are unref'd); this timer holds the event loop until a signal stops the agent.
      const keepAlive = setInterval(() => undefined, 1 << 30);
      const stopped = new Promise<void>((resolve) => {
        let stoppingSince = 0;
        const onSignal = (signal: NodeJS.Signals) => {
          if (stoppingSince) {
            // A service manager or `npm start` may deliver the same SIGTERM twice (to the process
            // and to its group): only a second Ctrl-C, a moment after the first, forces the exit.
            if (signal === 'SIGINT' && Date.now() - stoppingSince > 1000) {
              log.warn({ signal }, 'second interrupt while stopping; exiting now');
              process.exit(1);
            }
            log.info({ signal }, 'already stopping');
            return;
          }
          stoppingSince = Date.now();
          log.info({ signal }, 'stopping');
          agent.stop().then(resolve, (err: unknown) => {
            log.error({ err }, 'error while stopping');
            process.exitCode = 1;
            resolve();
          });
        };
        process.on('SIGINT', onSignal);
        process.on('SIGTERM', onSignal);
      });
      try {
        const plugins = await agent.start();
        const failed = plugins.filter((p) => p.state === 'failed').map((p) => p.id);
        log.info(
          { config: config.source, plugins: plugins.map((p) => `${p.id}:${p.state}`), failed, workers: agent.pool.threads, http: agent.httpAddress },
          'recovery-agent ready',
        );
        await stopped;
      } finally {
        clearInterval(keepAlive);
      }
      log.info('stopped');
    });
}
