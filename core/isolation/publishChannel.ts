/**
 * How a plugin's `FailureBus.publish` stays synchronous across processes. The child posts a
 * `PublishRequest` on the IPC channel, then blocks reading the answer from its stdio[3]
 * (`kPublishAnswerFd`), a socket the agent writes `PublishAnswer` frames on: a 4-byte
 * little-endian length, then the answer as `v8.serialize` (a structured clone, like the IPC
 * channel's own messages).
 *
 * Rules: one writer (the agent's event loop, which answers at once and never waits on the
 * plugin), one reader (the child's main thread, inside `publish`; the plugin cannot hand the
 * proxy to a thread of its own). The reader's end is made non-blocking, so a read that finds
 * nothing returns EAGAIN and the reader sleeps briefly and tries again until its deadline: an
 * agent that does not answer costs the plugin its publication, never a hang. End of file means
 * the agent is gone.
 */
import { readSync } from 'node:fs';
import { Socket } from 'node:net';
import type { Writable } from 'node:stream';
import { deserialize, serialize } from 'node:v8';
import { raError } from '../errors.js';
import type { PublishAnswer } from './messages.js';

/** Bytes of the length that starts each frame. */
const kFrameHeaderBytes = 4;
/** The reader's sleeps between reads that find nothing: from the first to the longest, in ms. */
const kFirstPollMs = 0.2;
const kLongestPollMs = 5;

/** The agent's side: one answer, one frame. */
export function writePublishAnswer(out: Writable, answer: PublishAnswer): void {
  const body = serialize(answer);
  const header = Buffer.alloc(kFrameHeaderBytes);
  header.writeUInt32LE(body.length, 0);
  out.write(Buffer.concat([header, body]));
}

/** The child's side. Construct once, at start: it makes the descriptor non-blocking. */
export class PublishAnswerReader {
  private buffered = Buffer.alloc(0);
  private readonly sleeper = new Int32Array(new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT));
  /** Held so that it is never collected; it only ever set O_NONBLOCK (libuv's `uv_pipe_open` does) and never reads. */
  private readonly handle: Socket;

  constructor(private readonly fd: number) {
    this.handle = new Socket({ fd, readable: false, writable: false });
    this.handle.unref();
  }

  /**
   * The next answer, blocking until it has arrived whole; undefined when `deadline` (a
   * `Date.now()` value) passes first. Throws when the agent has closed its end.
   */
  next(deadline: number): PublishAnswer | undefined {
    let sleepMs = kFirstPollMs;
    for (;;) {
      const frame = this.takeFrame();
      if (frame) return frame;
      const chunk = Buffer.allocUnsafe(64 * 1024);
      let n: number;
      try {
        n = readSync(this.fd, chunk, 0, chunk.length, null);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
        const left = deadline - Date.now();
        if (left <= 0) return undefined;
        Atomics.wait(this.sleeper, 0, 0, Math.min(sleepMs, left));
        sleepMs = Math.min(sleepMs * 2, kLongestPollMs);
        continue;
      }
      if (n === 0) throw raError('RA_ERR_PLUGIN_UNAVAILABLE', 'the agent is gone: its end of the publish channel is closed');
      this.buffered = Buffer.concat([this.buffered, chunk.subarray(0, n)]);
      sleepMs = kFirstPollMs;
    }
  }

  private takeFrame(): PublishAnswer | undefined {
    if (this.buffered.length < kFrameHeaderBytes) return undefined;
    const end = kFrameHeaderBytes + this.buffered.readUInt32LE(0);
    if (this.buffered.length < end) return undefined;
    const answer = deserialize(this.buffered.subarray(kFrameHeaderBytes, end)) as PublishAnswer;
    this.buffered = this.buffered.subarray(end);
    return answer;
  }
}
