/**
 * Runs `work` for every item at once and waits for all of them, so no temporary file is still
 * being written when it returns. Then it throws the failure of the FIRST item (in `items`
 * order) that failed: the same cause whichever download happened to fail first (a missing key
 * names the db artifact, as the check of a downloaded ciphertext did). The others are not
 * aborted on a failure: a retry of the activity does them again anyway, and the activity's
 * cancellation (`signal`, passed to each) still stops them all.
 */
export async function allSettledInOrder<T>(signal: AbortSignal, items: readonly T[], work: (item: T, signal: AbortSignal) => Promise<void>): Promise<void> {
  const outcomes = await Promise.allSettled(items.map((item) => work(item, signal)));
  const failed = outcomes.find((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
  if (failed) throw failed.reason;
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
