import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { pgClientConfig, type DbConnection } from '../../src/pg/connection.js';
import { dropDatabase } from '../../src/pg/restore.js';
import { createOwnedDatabase, databaseOwnership, dropOwnedDatabase, ownershipMarker, scratchDatabaseName } from '../../src/restore/database.js';
import { services } from '../helpers/services.js';

// The restore's proof of ownership, against the real server: a retry after a crash mid-restore
// drops ITS OWN half-restored database and starts clean; anyone else's database is never touched.
describe('databases a restore creates', () => {
  const s = services();
  const db: DbConnection = { host: s.postgres.host, port: s.postgres.port, user: s.postgres.user, password: s.postgres.password, database: s.postgres.sampleDb };
  const name = `restore_owned_${process.pid}`;
  const mine = ownershipMarker({ workflowId: 'drill-test-1', runId: '0190d5c2-1111-7000-8000-000000000001' });
  const theirs = ownershipMarker({ workflowId: 'drill-test-2', runId: '0190d5c2-2222-7000-8000-000000000002' });
  // The same workflow id started again (`--workflow-id drill-test-1` twice, "start like this one").
  const mineAgain = ownershipMarker({ workflowId: 'drill-test-1', runId: '0190d5c2-3333-7000-8000-000000000003' });
  afterAll(() => dropDatabase(db, name));

  const query = async (database: string, sql: string) => {
    const client = new pg.Client(pgClientConfig(db, database));
    await client.connect();
    try {
      return (await client.query(sql)).rows;
    } finally {
      await client.end();
    }
  };

  it('derives the scratch name from the backup id and the drill, within 63 bytes', () => {
    const scratch = scratchDatabaseName('20261126T170000Z-weekly-full', 'drill-prod-2026-12');
    expect(scratch).toMatch(/^drill_20261126t170000z_weekly_full_[0-9a-f]{6}$/);
    expect(Buffer.byteLength(scratch)).toBeLessThanOrEqual(63);
    expect(scratchDatabaseName('20261126T170000Z-weekly-full', 'drill-prod-2026-12')).toBe(scratch);
    expect(scratchDatabaseName('20261126T170000Z-weekly-full', 'another-drill')).not.toBe(scratch);
    expect(() => scratchDatabaseName('erp4', 'x')).toThrow('not a backup id');
  });

  it('creates an empty database with its marker, and on a retry starts again from a clean one', async () => {
    expect(await databaseOwnership(db, name, mine)).toBe('absent');
    await createOwnedDatabase(db, name, mine);
    expect(await databaseOwnership(db, name, mine)).toBe('ours');
    await query(name, 'CREATE TABLE half_restored (id int); INSERT INTO half_restored VALUES (1)');

    await createOwnedDatabase(db, name, mine);
    expect(await query(name, "SELECT to_regclass('half_restored') IS NULL AS clean")).toEqual([{ clean: true }]);
  });

  it("refuses another run's database and never drops it", async () => {
    expect(await databaseOwnership(db, name, theirs)).toBe('foreign');
    await expect(createOwnedDatabase(db, name, theirs)).rejects.toThrow(`database "${name}" already exists and was not created by this restore`);
    expect(await dropOwnedDatabase(db, name, theirs)).toBe(false);
    expect(await databaseOwnership(db, name, mine)).toBe('ours');
    await expect(createOwnedDatabase(db, s.postgres.sampleDb, mine)).rejects.toThrow('already exists');
  });

  it('takes a later run of the same workflow id for someone else: it neither reuses nor drops the earlier run\'s database', async () => {
    await query(name, 'CREATE TABLE restored_by_the_first_run (id int)');
    expect(await databaseOwnership(db, name, mineAgain)).toBe('foreign');
    await expect(createOwnedDatabase(db, name, mineAgain)).rejects.toThrow(`database "${name}" already exists and was not created by this restore`);
    expect(await dropOwnedDatabase(db, name, mineAgain)).toBe(false);
    expect(await query(name, "SELECT to_regclass('restored_by_the_first_run') IS NOT NULL AS kept")).toEqual([{ kept: true }]);
    expect(await dropOwnedDatabase(db, name, mine)).toBe(true);
    expect(await databaseOwnership(db, name, mine)).toBe('absent');
  });
});
