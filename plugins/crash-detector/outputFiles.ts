/**
 * Where a supervised process's stdout and stderr go: a file each under `<dataDir>/processes/`
 * (`<id>.stdout`, `<id>.stderr`), which the agent tails into its log line by line.
 *
 * Why files and not pipes: a pipe's reading end belongs to the agent. When the agent dies
 * (kill -9), the child's next write to it fails — a Node child writing with console.log dies of
 * the unhandled EPIPE, any program that keeps the default SIGPIPE disposition dies of the signal
 * (measured: a Node child logging with console.log every 100 ms was dead within 1.5 s of its
 * agent's SIGKILL; one logging through pino survived but its output went nowhere). A file has
 * no reader to lose: the child keeps writing while no agent runs, and a restarted agent that
 * adopts it tails the same file again (from its end at that moment: what was written while no
 * agent ran stays in the file, unlogged).
 *
 * The child's descriptor is opened O_APPEND, so when the tail has read everything and the file
 * has grown past `MAX_FILE_BYTES` it truncates it to zero and the child's next write lands at
 * the new start. Bytes written between the tail's last read and the truncation (microseconds)
 * are lost from the log; that is the price of a bounded file without a pipe.
 */
import { closeSync, constants, fstatSync, ftruncateSync, mkdirSync, openSync, readSync, watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from '../../core/privateFiles.js';
import { LineSplitter } from './outputLines.js';

/** Longest line of a child's output kept in the log; the rest of a longer line is dropped and counted. */
const MAX_LOG_LINE_BYTES = 16 * 1024;
/** An output file is truncated once the tail has read this much of it. */
const MAX_FILE_BYTES = 8 * 2 ** 20;
/** How often the tails look for new output besides when inotify says a file changed (in case it says nothing). */
const TAIL_POLL_MS = 250;

export type OutputStream = 'stdout' | 'stderr';
const STREAMS: readonly OutputStream[] = ['stdout', 'stderr'];

export function outputFile(dir: string, id: string, stream: OutputStream): string {
  return path.join(dir, `${id}.${stream}`);
}

/**
 * Opens (emptied) the output files of a process about to be started, for its stdio. The caller
 * closes the descriptors once the child has them.
 */
export function openForChild(dir: string, id: string): { stdout: number; stderr: number } {
  mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  const open = (s: OutputStream) => openSync(outputFile(dir, id, s), constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND | constants.O_TRUNC, PRIVATE_FILE_MODE);
  return { stdout: open('stdout'), stderr: open('stderr') };
}

/** Logs what a process writes to its output files: stdout at info, stderr at warn, one log line per output line. */
export class OutputTail {
  private readonly readers: { stream: OutputStream; fd: number; pos: number; splitter: LineSplitter }[] = [];
  private readonly buf = Buffer.allocUnsafe(64 * 1024);
  private timer: NodeJS.Timeout | undefined;
  private readonly watchers: FSWatcher[] = [];

  /** `fromEnd`: skip what the files already hold (an adopted process's earlier output). */
  constructor(dir: string, id: string, log: Logger, fromEnd: boolean) {
    for (const stream of STREAMS) {
      let fd: number;
      try {
        fd = openSync(outputFile(dir, id, stream), constants.O_RDWR);
      } catch (err) {
        log.warn({ stream, err: (err as Error).message }, 'cannot read the output file of the process; its output is not logged');
        continue;
      }
      const level = stream === 'stdout' ? 'info' : 'warn';
      const splitter = new LineSplitter((line, truncatedBytes) => {
        if (truncatedBytes > 0) log[level]({ stream, truncatedBytes }, `${line}…`);
        else log[level]({ stream }, line);
      }, MAX_LOG_LINE_BYTES);
      this.readers.push({ stream, fd, pos: fromEnd ? fstatSync(fd).size : 0, splitter });
      try {
        // inotify: output is logged as it is written, as it was from a pipe.
        const w = watch(outputFile(dir, id, stream), { persistent: false }, () => this.drain());
        w.on('error', () => undefined);
        this.watchers.push(w);
      } catch {
        // The poll below still finds it.
      }
    }
    this.timer = setInterval(() => this.drain(), TAIL_POLL_MS);
    this.timer.unref();
  }

  /** Logs every complete line written so far. */
  drain(): void {
    for (const r of this.readers) {
      for (;;) {
        let n: number;
        try {
          n = readSync(r.fd, this.buf, 0, this.buf.length, r.pos);
        } catch {
          break;
        }
        if (n === 0) {
          if (r.pos < fstatSync(r.fd).size) continue; // grew meanwhile
          if (r.pos >= MAX_FILE_BYTES) {
            ftruncateSync(r.fd, 0);
            r.pos = 0;
          } else if (r.pos > fstatSync(r.fd).size) {
            r.pos = 0; // someone else truncated it
          }
          break;
        }
        r.splitter.push(this.buf.subarray(0, n));
        r.pos += n;
      }
    }
  }

  /** Logs what is left (a last line without a newline too) and stops. */
  close(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    for (const w of this.watchers.splice(0)) w.close();
    this.drain();
    for (const r of this.readers.splice(0)) {
      r.splitter.end();
      closeSync(r.fd);
    }
  }
}
