/** Runs what it is given one at a time, in order; one that fails does not stop the next. */
export type SerialQueue = <T>(fn: () => Promise<T>) => Promise<T>;

export function serialQueue(): SerialQueue {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(fn: () => Promise<T>): Promise<T> => {
    const run = tail.catch(() => undefined).then(fn);
    tail = run;
    return run;
  };
}

/** One serial queue per key (say, per store): work on one key waits, other keys go on. */
export function keyedSerialQueues(): <T>(key: string, fn: () => Promise<T>) => Promise<T> {
  const queues = new Map<string, SerialQueue>();
  return <T>(key: string, fn: () => Promise<T>): Promise<T> => {
    let q = queues.get(key);
    if (!q) queues.set(key, (q = serialQueue()));
    return q(fn);
  };
}
