/**
 * Runs `work` for every item at once. The first failure aborts the others (their signal) and,
 * once every one has stopped (so no temporary file is still being written), is thrown. The
 * activity's cancellation aborts them all the same way.
 */
export async function allSettledOrAbort<T>(cancellation: AbortSignal, items: readonly T[], work: (item: T, signal: AbortSignal) => Promise<void>): Promise<void> {
  const controller = new AbortController();
  const signal = AbortSignal.any([cancellation, controller.signal]);
  let first: { error: unknown } | undefined;
  await Promise.all(
    items.map((item) =>
      work(item, signal).catch((error: unknown) => {
        first ??= { error };
        controller.abort(error);
      }),
    ),
  );
  if (first) throw first.error;
}

/** Per-item progress callbacks whose bytes are summed into one `report` (a heartbeat). */
export function summedProgress(report: (bytes: number) => void): (item: string) => (bytes: number) => void {
  const done = new Map<string, number>();
  return (item) => (bytes) => {
    done.set(item, bytes);
    let total = 0;
    for (const value of done.values()) total += value;
    report(total);
  };
}
