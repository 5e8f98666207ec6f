/**
 * The times of day the schedules run at, as operators write them in the environment
 * (SCHEDULE_DAILY=02:00, SCHEDULE_WEEKLY_FULL=sun 03:00, SCHEDULE_RESTORE_DRILL=1 10:00).
 * They are wall-clock times in TIME_ZONE; Temporal's calendar specs keep them there across
 * daylight-saving changes. Parsers return the value or a string saying what is wrong.
 */

export interface TimeOfDay {
  readonly hour: number;
  readonly minute: number;
}

export const DAYS_OF_WEEK = ['SUNDAY', 'MONDAY', 'TUESDAY', 'WEDNESDAY', 'THURSDAY', 'FRIDAY', 'SATURDAY'] as const;
export type DayOfWeek = (typeof DAYS_OF_WEEK)[number];

export interface WeeklyTime extends TimeOfDay {
  readonly dayOfWeek: DayOfWeek;
}

export interface MonthlyTime extends TimeOfDay {
  /** 1-28: every month has these days, so no month is silently skipped. */
  readonly dayOfMonth: number;
}

const TIME = /^([01]\d|2[0-3]):([0-5]\d)$/;

export function parseTimeOfDay(text: string): TimeOfDay | string {
  const match = TIME.exec(text.trim());
  if (!match?.[1] || !match[2]) return `${JSON.stringify(text)} is not a time HH:MM`;
  return { hour: Number(match[1]), minute: Number(match[2]) };
}

/** `sun 03:00`, `Sunday 03:00`. */
export function parseWeeklyTime(text: string): WeeklyTime | string {
  const [day = '', time, ...rest] = text.trim().split(/\s+/);
  const dayOfWeek = DAYS_OF_WEEK.find((name) => day.length >= 3 && name.startsWith(day.toUpperCase()));
  if (!dayOfWeek || time === undefined || rest.length > 0) return `${JSON.stringify(text)} is not a day of the week and a time`;
  const at = parseTimeOfDay(time);
  return typeof at === 'string' ? at : { dayOfWeek, ...at };
}

/** `1 10:00`: day of the month (1-28) and time. */
export function parseMonthlyTime(text: string): MonthlyTime | string {
  const [day = '', time, ...rest] = text.trim().split(/\s+/);
  if (!/^\d{1,2}$/.test(day) || time === undefined || rest.length > 0) return `${JSON.stringify(text)} is not a day of the month and a time`;
  const dayOfMonth = Number(day);
  if (dayOfMonth < 1 || dayOfMonth > 28) return `day ${dayOfMonth} is not in 1-28 (later days are missing in some months)`;
  const at = parseTimeOfDay(time);
  return typeof at === 'string' ? at : { dayOfMonth, ...at };
}

export function formatTimeOfDay(at: TimeOfDay): string {
  return `${String(at.hour).padStart(2, '0')}:${String(at.minute).padStart(2, '0')}`;
}
