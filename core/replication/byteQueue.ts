/**
 * Received bytes not yet consumed, as the chunks TCP delivered them: the stream decoders
 * (frames.ts, seal.ts) peek at a fixed-size header, then take a whole unit once it has arrived,
 * copying only when the unit spans chunks.
 */
export class ByteQueue {
  private chunks: Buffer[] = [];
  private buffered = 0;

  /** Bytes held. */
  get length(): number {
    return this.buffered;
  }

  push(chunk: Uint8Array): void {
    if (chunk.byteLength === 0) return;
    this.chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    this.buffered += chunk.byteLength;
  }

  /** Drops everything held (a decoder that failed). */
  clear(): void {
    this.chunks = [];
    this.buffered = 0;
  }

  /** The first `n` bytes (n ≤ length), left in place. */
  peek(n: number): Buffer {
    const first = this.chunks[0]!;
    if (first.byteLength >= n) return first.subarray(0, n);
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    for (const c of this.chunks) {
      const k = Math.min(c.byteLength, n - at);
      c.copy(out, at, 0, k);
      at += k;
      if (at === n) break;
    }
    return out;
  }

  /** Removes and returns the first `n` bytes (n ≤ length; one copy at most). */
  take(n: number): Buffer {
    this.buffered -= n;
    const first = this.chunks[0]!;
    if (first.byteLength >= n) {
      if (first.byteLength === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    while (at < n) {
      const c = this.chunks[0]!;
      const k = Math.min(c.byteLength, n - at);
      c.copy(out, at, 0, k);
      at += k;
      if (k < c.byteLength) this.chunks[0] = c.subarray(k);
      else this.chunks.shift();
    }
    return out;
  }
}
