import { backupIdFor, type BackupKind } from '../../src/layout.js';
import type { BackupRecord } from '../../src/retention.js';

/**
 * A production backup schedule, day by day, in Asia/Tokyo: nightly `daily` at 02:00 (S29),
 * `critical` every 6 hours (03:00, 09:00, 15:00, 21:00; S9), `weekly-full` on Sundays at 04:00
 * (S6), pinned `manual` snapshots before/after releases at 14:00 (S8), and a prune at 23:30.
 * Shared by the pure retention test and the test that replays it against a real repository.
 */
export interface SimulatedDay {
  /** Tokyo calendar date, YYYY-MM-DD. */
  date: string;
  /** The backups made that day, oldest first. */
  backups: BackupRecord[];
  /** When that day's prune runs (23:30 Tokyo). */
  pruneAt: Date;
}

export interface ScheduleOptions {
  /** First Tokyo calendar date, YYYY-MM-DD. */
  firstDate: string;
  days: number;
  /** Day index (0-based) -> label of a pinned manual snapshot made that day. */
  pinnedManual?: Record<number, string>;
  /** Day index -> label of an unpinned manual snapshot made that day. */
  unpinnedManual?: Record<number, string>;
  /** Day index -> label with which that day's nightly backup is pinned. */
  pinnedNightly?: Record<number, string>;
}

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
// Asia/Tokyo has had no daylight-saving time since 1951: a fixed offset is exact.
const TOKYO_OFFSET_MS = 9 * HOUR_MS;

export function simulateSchedule(options: ScheduleOptions): SimulatedDay[] {
  const firstMidnightUtc = Date.parse(`${options.firstDate}T00:00:00Z`);
  if (Number.isNaN(firstMidnightUtc)) throw new Error(`firstDate must be YYYY-MM-DD, got ${options.firstDate}`);
  const days: SimulatedDay[] = [];
  for (let index = 0; index < options.days; index += 1) {
    const tokyoMidnightUtc = firstMidnightUtc + index * DAY_MS;
    const date = new Date(tokyoMidnightUtc).toISOString().slice(0, 10);
    const at = (hour: number, minute = 0): Date =>
      new Date(tokyoMidnightUtc - TOKYO_OFFSET_MS + hour * HOUR_MS + minute * 60_000);
    const make = (kind: BackupKind, time: Date, pinnedLabel?: string, label?: string): BackupRecord => ({
      id: backupIdFor(kind, time),
      kind,
      generatedAt: time.toISOString(),
      pinned: pinnedLabel !== undefined,
      ...((pinnedLabel ?? label) !== undefined ? { label: pinnedLabel ?? label } : {}),
    });

    const backups: BackupRecord[] = [make('daily', at(2), options.pinnedNightly?.[index])];
    backups.push(make('critical', at(3)));
    const isSunday = new Date(tokyoMidnightUtc).getUTCDay() === 0;
    if (isSunday) backups.push(make('weekly-full', at(4)));
    backups.push(make('critical', at(9)));
    const pinnedManual = options.pinnedManual?.[index];
    if (pinnedManual !== undefined) backups.push(make('manual', at(14), pinnedManual));
    const unpinnedManual = options.unpinnedManual?.[index];
    if (unpinnedManual !== undefined) backups.push(make('manual', at(14, 30), undefined, unpinnedManual));
    backups.push(make('critical', at(15)), make('critical', at(21)));
    days.push({ date, backups, pruneAt: at(23, 30) });
  }
  return days;
}
