/**
 * The control block one scan's lanes share: which run to take next, whether to stop, how many
 * pages are done, and whether each lane has started.
 *
 * Rules of this concurrent code. The block lives in one SharedArrayBuffer, allocated by the
 * thread that runs the scan (`ScanControl.allocate`, not for the hot path) and viewed by every
 * lane — worker tasks and the calling thread's own loops — through `new ScanControl(buffer)`.
 * Every field is read and written with Atomics only:
 * - the run cursor: a lane takes a run with `Atomics.add`; the index it gets back is its own
 *   (no two lanes ever check the same run), and indices past the run count mean "none left";
 * - the stop flag: set by whoever sees a failure or an abort; lanes look at it before each run;
 * - the pages-done count: added to by the lane that checked them, read for progress;
 * - one state per lane: idle → running (the lane, when its first task starts) or idle → closed
 *   (the calling thread, once no runs are left: a lane that has not started by then never will,
 *   so the caller need not wait for a worker still booting). A closed lane touches nothing.
 */

/** Int32 slots after the 8-byte pages-done count (BigInt64 slot 0 = Int32 slots 0 and 1). */
const kNextRun = 2;
const kStop = 3;
const kRunCount = 4;
const kLaneStates = 5;

const kLaneIdle = 0;
const kLaneRunning = 1;
const kLaneClosed = 2;

export class ScanControl {
  private readonly ints: Int32Array<SharedArrayBuffer>;
  private readonly pages: BigInt64Array<SharedArrayBuffer>;
  /** Runs in the scan, set once at allocation. */
  readonly runCount: number;
  /** Lanes the block has room for. */
  readonly lanes: number;

  /** Allocates the block of a scan of `runCount` runs by `lanes` lanes. Not for the hot path. */
  static allocate(runCount: number, lanes: number): SharedArrayBuffer {
    if (!Number.isInteger(runCount) || runCount < 0 || runCount > 0x7fffffff) throw new RangeError(`scan control: runCount must be an integer from 0 to 2^31 - 1 (got ${runCount})`);
    if (!Number.isInteger(lanes) || lanes < 1) throw new RangeError(`scan control: lanes must be a positive integer (got ${lanes})`);
    const buffer = new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT * (kLaneStates + lanes));
    Atomics.store(new Int32Array(buffer), kRunCount, runCount);
    return buffer;
  }

  constructor(buffer: SharedArrayBuffer) {
    this.ints = new Int32Array(buffer);
    this.pages = new BigInt64Array(buffer, 0, 1);
    this.runCount = Atomics.load(this.ints, kRunCount);
    this.lanes = this.ints.length - kLaneStates;
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

  /** Called by a lane's task before it touches anything: false when the caller closed the lane. */
  enterLane(lane: number): boolean {
    return Atomics.compareExchange(this.ints, kLaneStates + this.laneIndex(lane), kLaneIdle, kLaneRunning) !== kLaneClosed;
  }

  /** Whether the lane's task has started (and takes runs without the caller's help from then on). */
  hasEntered(lane: number): boolean {
    return Atomics.load(this.ints, kLaneStates + this.laneIndex(lane)) === kLaneRunning;
  }

  /** Called by the caller once no runs are left: true when the lane never started (and now never will). */
  closeLaneIfIdle(lane: number): boolean {
    return Atomics.compareExchange(this.ints, kLaneStates + this.laneIndex(lane), kLaneIdle, kLaneClosed) === kLaneIdle;
  }

  private laneIndex(lane: number): number {
    if (!Number.isInteger(lane) || lane < 0 || lane >= this.lanes) throw new RangeError(`scan control: no lane ${lane} (the block has ${this.lanes})`);
    return lane;
  }
}
