/**
 * The root pino logger. JSON lines; plugins get `log.child({ plugin: id })` from the host.
 * Commands other than `run` log to stderr so that their stdout stays machine-readable.
 */
import { pino, type Logger, type Level } from 'pino';

export type { Logger };

export interface LoggerOptions {
  level?: Level | 'silent';
  /** 1 = stdout, 2 = stderr. */
  fd?: 1 | 2;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    { name: 'recovery-agent', level: options.level ?? 'info', base: { pid: process.pid } },
    pino.destination({ fd: options.fd ?? 1, sync: true }),
  );
}
