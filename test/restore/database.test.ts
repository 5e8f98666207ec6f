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
  const mine = ownershipMarker('drill-test-1');
  const theirs = ownershipMarker('drill-test-2');
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
    expect(await dropOwnedDatabase(db, name, mine)).toBe(true);
    expect(await databaseOwnership(db, name, mine)).toBe('absent');
  });
});
