/**
 * The journal: every failure and every recovery, one JSON object per line, under
 * `agent.dataDir`. It survives restarts: the orchestrator reloads it to restore its statistics
 * and recent history. A torn last line (a crash mid-append) is skipped, not fatal. When the file
 * passes `maxBytes` it is rotated to `journal.1.jsonl` (one generation kept).
 */
import { closeSync, existsSync, openSync, readFileSync, renameSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Failure } from '../contracts/Failure.js';
import type { ActionAttempt, HealResult } from '../contracts/Healer.js';
import { PRIVATE_FILE_MODE } from '../privateFiles.js';
import { writeAllSync } from '../writeAll.js';

/** One recovery, as journaled and served by `/recoveries`. */
export interface RecoveryRecord {
  readonly id: string;
  readonly failureId: string;
  readonly kind: string;
  readonly priority: Failure['priority'];
  readonly subject: string;
  readonly fingerprint: string;
  readonly detectedAt: number;
  /** When the failure began, if its detector bounded it (Failure.occurredAt). */
  readonly occurredAt?: number;
  readonly startedAt: number;
  readonly finishedAt: number;
  /** From the failure's start (occurredAt, else its detection) to verified fix (or to giving up), in ms. */
  readonly rtoMs: number;
  readonly targetMs: number;
  readonly withinTarget: boolean;
  readonly outcome: HealResult['outcome'];
  /** The failure is escalated (a person is needed) as of this record. */
  readonly escalated: boolean;
  /** This record escalated it (each failure counts once, whichever attempt did). Absent in journals before it: the first attempt did. */
  readonly escalatedNow?: boolean;
  readonly attempts: readonly ActionAttempt[];
  /** Further failures with the same fingerprint that arrived while this one was open. */
  readonly duplicates: number;
  readonly reason?: string;
  /** Which attempt at the failure this was, when it was retried or is to be (1 = the first). */
  readonly attempt?: number;
  /** Set when the failure is kept open for another attempt (HealResult.retry). */
  readonly retry?: { readonly nextAttempt: number; readonly maxAttempts: number; readonly waitingFor: string; readonly notAfter: number };
}

/**
 * A failure its detector closed because its condition went away by itself (FailureBus.resolve):
 * not a recovery, so no RTO and no weight in RTO compliance.
 */
export interface ClearedRecord {
  /** The open (or escalated) failure that was cleared. */
  readonly failureId: string;
  /** The failure the detector resolved (the same, or a later duplicate folded into it). */
  readonly resolvedFailureId: string;
  readonly kind: string;
  readonly priority: Failure['priority'];
  readonly subject: string;
  readonly fingerprint: string;
  readonly detectedAt: number;
  readonly clearedAt: number;
  readonly reason: string;
  /** The detector that resolved it. */
  readonly source: string;
}

export type JournalEntry =
  | { type: 'failure'; at: number; failure: Failure }
  | { type: 'recovery'; at: number; recovery: RecoveryRecord }
  | { type: 'cleared'; at: number; cleared: ClearedRecord };

export class Journal {
  private fd: number | null = null;
  private bytes = 0;

  constructor(
    readonly file: string,
    private readonly maxBytes = 16 * 1024 * 1024,
  ) {}

  /** Every readable entry, oldest first (the rotated generation, then the current file). */
  load(): JournalEntry[] {
    const out: JournalEntry[] = [];
    for (const f of [`${this.file.replace(/\.jsonl$/, '')}.1.jsonl`, this.file]) {
      if (!existsSync(f)) continue;
      for (const line of readFileSync(f, 'utf8').split('\n')) {
        if (!line) continue;
        try {
          out.push(JSON.parse(line) as JournalEntry);
        } catch {
          // A line cut short by a crash mid-append: skip it.
        }
      }
    }
    return out;
  }

  append(entry: JournalEntry): void {
    if (this.fd === null) {
      this.fd = openSync(this.file, 'a', PRIVATE_FILE_MODE);
      this.bytes = statSync(this.file).size;
    }
    const line = Buffer.from(JSON.stringify(entry) + '\n');
    writeAllSync(this.fd, line);
    this.bytes += line.byteLength;
    if (this.bytes > this.maxBytes) this.rotate();
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }

  private rotate(): void {
    this.close();
    renameSync(this.file, path.join(path.dirname(this.file), `${path.basename(this.file, '.jsonl')}.1.jsonl`));
  }
}
