import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { formatInZone } from '../../src/commands/schedules.js';
import { loadConfig } from '../../src/config.js';
import { parseMonthlyTime, parseTimeOfDay, parseWeeklyTime } from '../../src/schedule-times.js';
import { desiredSchedules, scheduleId } from '../../src/temporal/schedules.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'erp4-schedules-unit-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const base = { DB_NAME: 'erp4', BACKUP_DIR: dir, BACKUP_ENV: 'prod' };

describe('schedule times', () => {
  it('parses HH:MM, a weekday and a day of the month', () => {
    expect(parseTimeOfDay('02:00')).toEqual({ hour: 2, minute: 0 });
    expect(parseTimeOfDay('23:59')).toEqual({ hour: 23, minute: 59 });
    expect(parseWeeklyTime('sun 03:00')).toEqual({ dayOfWeek: 'SUNDAY', hour: 3, minute: 0 });
    expect(parseWeeklyTime('Wednesday 21:30')).toEqual({ dayOfWeek: 'WEDNESDAY', hour: 21, minute: 30 });
    expect(parseMonthlyTime('28 10:00')).toEqual({ dayOfMonth: 28, hour: 10, minute: 0 });
  });

  it.each([
    [parseTimeOfDay, '24:00'],
    [parseTimeOfDay, '2:00'],
    [parseTimeOfDay, '02:00:00'],
    [parseWeeklyTime, 'mo 03:00'],
    [parseWeeklyTime, 'sun'],
    [parseWeeklyTime, 'sun 03:00 extra'],
    [parseMonthlyTime, '0 10:00'],
    [parseMonthlyTime, '29 10:00'],
    [parseMonthlyTime, 'first 10:00'],
  ] as const)('%o refuses %j', (parse, text) => {
    expect(typeof (parse as (t: string) => unknown)(text)).toBe('string');
  });
});

describe('desiredSchedules', () => {
  it('gives stable ids carrying the env, and the daily backup at SCHEDULE_DAILY in TIME_ZONE', () => {
    const schedules = desiredSchedules(loadConfig(base));
    expect(schedules.map((s) => s.scheduleId)).toEqual([
      'erp4-backup-prod-daily',
      'erp4-backup-prod-restore-drill',
      'erp4-backup-prod-prune',
      'erp4-backup-prod-freshness',
    ]);
    const daily = schedules[0]!;
    expect(daily).toMatchObject({ workflowType: 'NightlyBackup', args: [{ kind: 'daily' }], when: 'every day at 02:00 Asia/Tokyo' });
    expect(daily.calendars[0]).toMatchObject({ hour: [{ start: 2, end: 2, step: 1 }], minute: [{ start: 0, end: 0, step: 1 }] });
    expect(daily.requirement).toMatch(/^S29/);
    expect(scheduleId('staging', 'freshness')).toBe('erp4-backup-staging-freshness');
  });

  it('adds the critical (every 6 h) and weekly-full schedules when CRITICAL_TABLES is set', () => {
    const schedules = desiredSchedules(loadConfig({ ...base, CRITICAL_TABLES: 'invoices', SCHEDULE_CRITICAL: '14:20', SCHEDULE_WEEKLY_FULL: 'sat 23:00' }));
    const critical = schedules.find((s) => s.name === 'critical')!;
    expect(critical.calendars[0]).toMatchObject({ hour: [{ start: 2, end: 23, step: 6 }], minute: [{ start: 20, end: 20, step: 1 }] });
    expect(critical.when).toBe('every 6 hours at 02:20, 08:20, 14:20, 20:20 Asia/Tokyo');
    const weekly = schedules.find((s) => s.name === 'weekly-full')!;
    expect(weekly.calendars[0]).toMatchObject({ dayOfWeek: [{ start: 'SATURDAY', end: 'SATURDAY', step: 1 }], hour: [{ start: 23, end: 23, step: 1 }] });
    expect(weekly.args).toEqual([{ kind: 'weekly-full' }]);
  });

  it('drills the off-site copy when there is one', () => {
    const drill = (env: Record<string, string>) => desiredSchedules(loadConfig({ ...base, ...env })).find((s) => s.name === 'restore-drill')!.args;
    expect(drill({})).toEqual([{ backupId: 'latest', repository: 'local', kind: 'daily' }]);
    expect(drill({ S3_BUCKET: 'erp4-backup', SSE_S3: 'AES256' })).toEqual([{ backupId: 'latest', repository: 's3', kind: 'daily' }]);
  });

  it('runs freshness every 15 minutes and the drill monthly on SCHEDULE_RESTORE_DRILL', () => {
    const schedules = desiredSchedules(loadConfig({ ...base, SCHEDULE_RESTORE_DRILL: '3 09:45' }));
    expect(schedules.find((s) => s.name === 'freshness')!.calendars[0]).toMatchObject({ minute: [{ start: 0, end: 59, step: 15 }] });
    expect(schedules.find((s) => s.name === 'restore-drill')!.calendars[0]).toMatchObject({
      dayOfMonth: [{ start: 3, end: 3, step: 1 }],
      hour: [{ start: 9, end: 9, step: 1 }],
      minute: [{ start: 45, end: 45, step: 1 }],
    });
  });
});

describe('formatInZone', () => {
  it('prints wall-clock time in the configured zone, across a date line', () => {
    expect(formatInZone(new Date('2027-01-31T17:00:00Z'), 'Asia/Tokyo')).toBe('2027-02-01 02:00');
    expect(formatInZone(new Date('2027-01-31T17:00:00Z'), 'UTC')).toBe('2027-01-31 17:00');
  });
});
