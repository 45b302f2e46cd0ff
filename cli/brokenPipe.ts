/**
 * A reader that goes away (`recovery-agent … | head -1`) closes the pipe under stdout or stderr,
 * and the next write fails with EPIPE, emitted as an 'error' event that would end the process
 * with a stack trace. For a command that moves data (a snapshot, a restore) the work matters more
 * than its report: once a stream's reader is gone, what is written to it is dropped, the
 * command finishes, and it exits with its own exit code. Any other stream error stays fatal.
 *
 * The daemon's log (pino) writes to fd 1 through its own destination, which pino already
 * silences on EPIPE.
 */

/** Makes EPIPE on process.stdout and process.stderr drop further output instead of crashing. */
export function dropOutputOnBrokenPipe(): void {
  for (const stream of [process.stdout, process.stderr]) {
    if (stream.listeners('error').includes(onStreamError)) continue;
    stream.on('error', onStreamError);
  }
}

function onStreamError(err: NodeJS.ErrnoException): void {
  // The stream is destroyed by now: later writes fail quietly (their callbacks get the error).
  if (err.code === 'EPIPE') return;
  throw err;
}
