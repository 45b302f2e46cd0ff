/**
 * The control block one scan's lanes share: which run to take next, whether to stop, and how
 * many pages are done.
 *
 * Rules of this concurrent code. The block lives in one SharedArrayBuffer, allocated by the
 * thread that runs the scan (`ScanControl.allocate`, not for the hot path) and viewed by every
 * lane — worker tasks and the calling thread's asynchronous loops — through `new ScanControl(buffer)`.
 * Every field is read and written with Atomics only:
 * - the run cursor: a lane takes a run with `Atomics.add`; the index it gets back is its own
 *   (no two lanes ever check the same run), and indices past the run count mean "none left";
 * - the stop flag: set by whoever sees a failure or an abort; lanes look at it before each run;
 * - the pages-done count: added to by the lane that checked them, read for progress.
 */

/** Int32 slots after the 8-byte pages-done count (BigInt64 slot 0 = Int32 slots 0 and 1). */
const kNextRun = 2;
const kStop = 3;
const kRunCount = 4;
const kSlots = 5;

export class ScanControl {
  private readonly ints: Int32Array<SharedArrayBuffer>;
  private readonly pages: BigInt64Array<SharedArrayBuffer>;
  /** Runs in the scan, set once at allocation. */
  readonly runCount: number;

  /** Allocates the block of a scan of `runCount` runs. Not for the hot path. */
  static allocate(runCount: number): SharedArrayBuffer {
    if (!Number.isInteger(runCount) || runCount < 0 || runCount > 0x7fffffff) throw new RangeError(`scan control: runCount must be an integer from 0 to 2^31 - 1 (got ${runCount})`);
    const buffer = new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT * kSlots);
    Atomics.store(new Int32Array(buffer), kRunCount, runCount);
    return buffer;
  }

  constructor(buffer: SharedArrayBuffer) {
    this.ints = new Int32Array(buffer);
    this.pages = new BigInt64Array(buffer, 0, 1);
    this.runCount = Atomics.load(this.ints, kRunCount);
  }

  /** The index of the next run for the calling lane, or -1 when none is left or the scan stopped. */
  claimRun(): number {
    if (Atomics.load(this.ints, kStop) !== 0) return -1;
    // Lanes that find the cursor past the end leave it there, so it counts up at most once per
    // lane beyond runCount: far below overflow.
    const run = Atomics.add(this.ints, kNextRun, 1);
    return run < this.runCount ? run : -1;
  }

  /** Whether a run may still be taken (a lane that tries may yet find none: another took it). */
  get runsLeft(): boolean {
    return Atomics.load(this.ints, kStop) === 0 && Atomics.load(this.ints, kNextRun) < this.runCount;
  }

  /** Tells every lane to take no further run. */
  stop(): void {
    Atomics.store(this.ints, kStop, 1);
  }

  get stopped(): boolean {
    return Atomics.load(this.ints, kStop) !== 0;
  }

  /** Counts `n` more pages checked. */
  addPages(n: number): void {
    Atomics.add(this.pages, 0, BigInt(n));
  }

  /** Pages checked so far, by every lane. */
  get pagesDone(): number {
    return Number(Atomics.load(this.pages, 0));
  }
}
