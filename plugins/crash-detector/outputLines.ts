/**
 * Splits a child's stdout or stderr into lines for the agent's log. A line longer than
 * `maxLineBytes` is logged truncated once, and the rest of it up to the next newline is
 * counted and dropped, so a process that writes megabytes without a newline cannot make the
 * agent buffer them.
 */

export type LineSink = (line: string, truncatedBytes: number) => void;

export class LineSplitter {
  private parts: Buffer[] = [];
  private held = 0;
  /** Bytes dropped from the current line after it reached the limit. */
  private dropped = 0;

  constructor(
    private readonly sink: LineSink,
    private readonly maxLineBytes = 16 * 1024,
  ) {}

  push(chunk: Buffer): void {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl === -1) {
        this.hold(chunk.subarray(start));
        return;
      }
      this.hold(chunk.subarray(start, nl));
      this.emit();
      start = nl + 1;
    }
  }

  /** Emits what is left at the end of the stream (a last line without a newline). */
  end(): void {
    if (this.held > 0 || this.dropped > 0) this.emit();
  }

  private hold(bytes: Buffer): void {
    if (bytes.length === 0) return;
    const room = this.maxLineBytes - this.held;
    if (room > 0) {
      const kept = bytes.length <= room ? bytes : bytes.subarray(0, room);
      this.parts.push(kept);
      this.held += kept.length;
      this.dropped += bytes.length - kept.length;
    } else {
      this.dropped += bytes.length;
    }
  }

  private emit(): void {
    let line = Buffer.concat(this.parts, this.held).toString('utf8');
    if (line.endsWith('\r')) line = line.slice(0, -1);
    const dropped = this.dropped;
    this.parts = [];
    this.held = 0;
    this.dropped = 0;
    this.sink(line, dropped);
  }
}
