// Bounded concurrency over a stream of work: at most `limit` tasks in flight, pulling the next item
// only when one finishes, so neither the list nor the tasks pile up in memory.
//
// Unlike p-map, a failure (of a task or of the source) stops new work and waits for the tasks in
// flight before it is thrown: when the caller then cleans up (deletes what was uploaded), nothing
// is still writing behind its back.
export async function forEachBounded<T>(items: AsyncIterable<T> | Iterable<T>, limit: number, task: (item: T) => Promise<void>): Promise<void> {
  const inFlight = new Set<Promise<void>>();
  let failure: { error: unknown } | null = null;
  try {
    for await (const item of items) {
      if (failure) break;
      const running: Promise<void> = task(item).then(
        () => void inFlight.delete(running),
        (error: unknown) => {
          inFlight.delete(running);
          failure ??= { error };
        },
      );
      inFlight.add(running);
      if (inFlight.size >= limit) await Promise.race(inFlight);
    }
  } catch (error) {
    failure ??= { error };
  }
  await Promise.all(inFlight);
  if (failure) throw failure.error;
}

/** `promise`, or a rejection with `message` once `ms` have passed (the promise itself is left to settle). */
export function withDeadline<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const deadline = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)));
  promise.catch(() => undefined);
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}
