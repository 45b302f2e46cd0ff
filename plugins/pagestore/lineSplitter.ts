/**
 * Cuts the control socket's stream into lines, looking at each character once. A batch's line
 * (write-pages, replica-pages' answer) is up to megabytes arriving in 64 KiB chunks: appending
 * each chunk to one string and searching it all again was quadratic, and the largest share of a
 * burst repair's CPU time.
 */
export class LineSplitter {
  private parts: string[] = [];
  private partLength = 0;

  /** The lines `chunk` completes (without their '\n'); what follows the last is kept. */
  push(chunk: string): string[] {
    const lines: string[] = [];
    let from = 0;
    for (let nl; (nl = chunk.indexOf('\n', from)) >= 0; from = nl + 1) {
      const tail = chunk.slice(from, nl);
      lines.push(this.parts.length > 0 ? this.parts.join('') + tail : tail);
      this.parts = [];
      this.partLength = 0;
    }
    if (from < chunk.length) {
      this.parts.push(from === 0 ? chunk : chunk.slice(from));
      this.partLength += chunk.length - from;
    }
    return lines;
  }

  /** Characters of the line not yet ended. */
  get pending(): number {
    return this.partLength;
  }
}
