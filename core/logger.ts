/**
 * The root pino logger; plugins get `log.child({ plugin: id })` from the host. Commands other
 * than `run` log to stderr so that their stdout stays machine-readable.
 *
 * Two formats. JSON lines, for whatever reads the log (journald, a file, a collector), and
 * pretty lines for a person at a terminal: local times, the level, who speaks (plugin,
 * component, a supervised process and its pid), then the message, with the other fields on the
 * lines below. `auto` (the default) is pretty when the log's descriptor is a terminal and JSON
 * otherwise; `agent.logFormat` or `RECOVERY_AGENT_LOG_FORMAT` (which wins, for a one-off run)
 * says `json` or `pretty` instead. pino-pretty is loaded only for a pretty log, so a command
 * that logs JSON, or nothing, does not pay for it.
 */
import { createRequire } from 'node:module';
import { isatty } from 'node:tty';
import { pino, type DestinationStream, type Level, type Logger } from 'pino';
import { raError } from './errors.js';

export type { Logger };

/** How log records are written: `auto` is `pretty` on a terminal, `json` otherwise. */
export const LOG_FORMATS = ['auto', 'json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** The environment variable that overrides `agent.logFormat`. */
export const LOG_FORMAT_ENV = 'RECOVERY_AGENT_LOG_FORMAT';

export interface LoggerOptions {
  level?: Level | 'silent';
  /** 1 = stdout, 2 = stderr; or another open descriptor (a test's file). */
  fd?: number;
  /** Default `auto`; `RECOVERY_AGENT_LOG_FORMAT` in `env` overrides it. */
  format?: LogFormat;
  env?: NodeJS.ProcessEnv;
}

/**
 * The format a logger on `fd` uses: the environment's, else the configured one, `auto` resolved
 * by whether `fd` is a terminal. An unknown value in the environment is an error, not ignored:
 * the operator who set it expects it to take effect.
 */
export function resolveLogFormat(fd: number, format: LogFormat = 'auto', env: NodeJS.ProcessEnv = process.env): 'json' | 'pretty' {
  const fromEnv = env[LOG_FORMAT_ENV];
  let chosen = format;
  if (fromEnv !== undefined && fromEnv !== '') {
    if (!(LOG_FORMATS as readonly string[]).includes(fromEnv)) {
      throw raError('RA_ERR_CONFIG', `${LOG_FORMAT_ENV}=${fromEnv}: expected one of ${LOG_FORMATS.join(', ')}`);
    }
    chosen = fromEnv as LogFormat;
  }
  if (chosen === 'auto') return isatty(fd) ? 'pretty' : 'json';
  return chosen;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const fd = options.fd ?? 1;
  const format = resolveLogFormat(fd, options.format, options.env);
  return pino(
    { name: 'recovery-agent', level: options.level ?? 'info', base: { pid: process.pid } },
    format === 'pretty' ? prettyStream(fd, options.env ?? process.env) : pino.destination({ fd, sync: true }),
  );
}

/** The fields shown before the message, as `[who]`, instead of on the lines below it. */
const WHO_FIELDS = ['name', 'pid', 'hostname', 'plugin', 'component', 'process', 'processPid', 'stream'];

/**
 * pino-pretty writing to `fd`, synchronously as the JSON destination does (a record logged just
 * before an exit is not lost). Each record is one line headed by who speaks: a supervised
 * process's output is `[crash-detector writer#1234] <its line>`, so a multi-line stack trace it
 * prints stays a readable block of lines, each saying whose it is. Colours on a terminal unless
 * NO_COLOR is set.
 */
function prettyStream(fd: number, env: NodeJS.ProcessEnv): DestinationStream {
  const require = createRequire(import.meta.url);
  const pretty = require('pino-pretty') as typeof import('pino-pretty');
  return pretty({
    destination: fd,
    sync: true,
    colorize: isatty(fd) && !env.NO_COLOR,
    translateTime: 'SYS:yyyy-mm-dd HH:MM:ss.l',
    ignore: WHO_FIELDS.join(','),
    messageFormat: (log, messageKey) => {
      const who: string[] = [];
      const source = log.plugin ?? log.component;
      if (typeof source === 'string') who.push(source);
      if (typeof log.process === 'string') who.push(typeof log.processPid === 'number' ? `${log.process}#${log.processPid}` : log.process);
      if (log.stream === 'stderr') who.push('stderr');
      const msg = typeof log[messageKey] === 'string' ? (log[messageKey] as string) : '';
      return who.length > 0 ? `[${who.join(' ')}] ${msg}` : msg;
    },
  });
}
