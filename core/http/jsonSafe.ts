/**
 * Turning what plugins hand the status document (`StatusSection.snapshot()`) into JSON without
 * letting one bad section take the agent down. `GET /events` serializes from a timer, outside any
 * request: a throw there (a BigInt, a cycle, a throwing `toJSON`) is an uncaught exception, and an
 * `async snapshot()` that rejects is an unhandled rejection; Node 20 exits on either. So each
 * section is serialized on its own, in its own try, and a thenable is never kept.
 */

/** What an asynchronous section shows in place of its data (snapshot() must be synchronous). */
export const ASYNC_SECTION = 'asynchronous status section';

/**
 * JSON.stringify replacer: a BigInt (an LSN, a byte count) becomes its decimal string; a promise
 * nested anywhere becomes `{ error }` (handled: see settleThenable) rather than a silent `{}`.
 */
export function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  return settleThenable(value);
}

function isThenable(v: unknown): v is PromiseLike<unknown> & { catch?: (f: (e: unknown) => void) => unknown } {
  return (typeof v === 'object' || typeof v === 'function') && v !== null && typeof (v as { then?: unknown }).then === 'function';
}

/**
 * A thenable is replaced by `{ error }`, after a handler is attached so that its rejection (now
 * or later) is not unhandled; anything else is returned as is.
 */
function settleThenable(v: unknown): unknown {
  if (!isThenable(v)) return v;
  try {
    if (typeof v.catch === 'function') v.catch(() => {});
    else v.then(undefined, () => {});
  } catch {
    // A thenable whose then/catch throws: nothing left to handle.
  }
  return { error: ASYNC_SECTION };
}

/** `v` as JSON text (BigInts as strings); `{ error }` when it cannot be serialized, or is a thenable. */
export function toJsonText(v: unknown): string {
  const value = settleThenable(v);
  try {
    // undefined (or a function) has no JSON text: null, as JSON.stringify does inside an object.
    return JSON.stringify(value, jsonReplacer) ?? 'null';
  } catch (err) {
    return JSON.stringify({ error: `not serializable as JSON: ${(err as Error).message}` });
  }
}

/**
 * A document (the status, its periodic refresh) as JSON text, each top-level entry serialized
 * on its own so that one bad section shows as its own `{ error }` and the rest still goes out.
 */
export function documentJsonText(doc: unknown): string {
  const value = settleThenable(doc);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return toJsonText(value);
  let keys: string[];
  try {
    keys = Object.keys(value);
  } catch (err) {
    return toJsonText({ error: (err as Error).message });
  }
  const parts: string[] = [];
  for (const k of keys) {
    let entry: unknown;
    try {
      entry = (value as Record<string, unknown>)[k];
    } catch (err) {
      entry = { error: (err as Error).message };
    }
    if (entry === undefined || typeof entry === 'function' || typeof entry === 'symbol') continue; // as JSON.stringify skips them
    parts.push(`${JSON.stringify(k)}:${toJsonText(entry)}`);
  }
  return `{${parts.join(',')}}`;
}

/**
 * A status section's value, made safe to put into a document that Fastify (or anyone) will
 * JSON.stringify: plain JSON data (BigInts as strings), or `{ error }`.
 */
export function jsonSafe(v: unknown): unknown {
  return JSON.parse(toJsonText(v)) as unknown;
}
