/**
 * A command that fails after working out its result — `status` of an unhealthy agent, `scan`
 * that finds corruption, `snapshot verify` that finds damage — prints the result (it is the
 * point), then fails as a thrown error does: main.ts writes the error on stderr and exits with
 * its code. With `--json` its document carries the same `error` member a thrown error's line
 * has (`{…result, "error":{"code","message","exitCode"}}`): stdout stays one JSON document, and
 * `.error` is where a script looks either way. The first failure recorded wins.
 */
import { describeError, isRaError } from '../core/errors.js';
import { exitCodeFor } from './exitCode.js';

/** The `error` member of a --json answer: the catalogued code (null outside the catalogue), the message, the exit code. */
export interface JsonErrorMember {
  code: string | null;
  message: string;
  exitCode: number;
}

let pending: { err: unknown } | undefined;

/** Makes the running command fail with `err` once it has written its output. */
export function failAfterOutput(err: unknown): void {
  pending ??= { err };
}

/** The failure the command recorded, if any, forgotten once taken. */
export function takeCommandFailure(): { err: unknown } | undefined {
  const p = pending;
  pending = undefined;
  return p;
}

/** `err` as the `error` member of a --json answer. */
export async function jsonErrorMember(err: unknown): Promise<JsonErrorMember> {
  const exitCode = await exitCodeFor(err);
  return isRaError(err) ? { code: err.code, message: err.message, exitCode } : { code: null, message: describeError(err), exitCode };
}

/** `doc` with the `error` member of `failure`, when there is one: a failed command's --json document. */
export async function withFailure<T extends object>(doc: T, failure: unknown): Promise<T | (T & { error: JsonErrorMember })> {
  return failure === undefined ? doc : { ...doc, error: await jsonErrorMember(failure) };
}
