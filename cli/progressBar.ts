/**
 * A one-line progress bar for long CLI work, drawn on stderr only when it is a terminal and
 * redrawn at most ten times a second.
 */
export class ProgressBar {
  private label = '';
  private t0 = performance.now();
  private lastDraw = 0;
  private shown = false;

  constructor(private readonly out: NodeJS.WriteStream) {}

  /** A bar on stderr when it is a terminal and `enabled`, else null. */
  static forStderr(enabled = true): ProgressBar | null {
    return enabled && process.stderr.isTTY ? new ProgressBar(process.stderr) : null;
  }

  update(label: string, done: number, total: number, unit = ''): void {
    const now = performance.now();
    if (label !== this.label) {
      this.label = label;
      this.t0 = now;
    } else if (now - this.lastDraw < 100 && done < total) {
      return;
    }
    this.lastDraw = now;
    const frac = total > 0 ? Math.min(1, done / total) : 1;
    const width = Math.max(10, Math.min(40, (this.out.columns ?? 80) - 50));
    const filled = Math.round(frac * width);
    const secs = (now - this.t0) / 1000;
    this.out.write(`\r${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(frac * 100).toFixed(0).padStart(3)}% ${done}/${total}${unit}  ${secs.toFixed(1)} s\x1b[K`);
    this.shown = true;
  }

  clear(): void {
    if (!this.shown) return;
    this.out.write('\r\x1b[K');
    this.shown = false;
  }
}
