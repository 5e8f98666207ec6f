import pg from 'pg';
import type { DbConnection } from '../../src/pg/connection.js';
import { createSampleDatabase } from '../helpers/product.js';
import type { Services } from '../helpers/services.js';

/**
 * A copy of the sample ERP database plus ~6 MiB of incompressible attachments: the dump
 * streams for a while and the S3 upload is a real multipart upload (5 MiB parts), so random
 * moments and injected faults land in the dump, the transfers and the manifest writes alike.
 */
export async function createChaosDatabase(s: Services, name: string): Promise<void> {
  await createSampleDatabase(s, name);
  const admin = new pg.Client({ ...superuser(s), database: name });
  await admin.connect();
  try {
    await admin.query('CREATE TABLE attachments (id int PRIMARY KEY, body bytea NOT NULL)');
    await admin.query('ALTER TABLE attachments ALTER COLUMN body SET STORAGE EXTERNAL');
    await admin.query(`
      INSERT INTO attachments
      SELECT g, decode(string_agg(md5(g::text || ':' || h::text || random()::text), ''), 'hex')
        FROM generate_series(1, 48) g, generate_series(1, 8192) h GROUP BY g`);
  } finally {
    await admin.end();
  }
}

/** The harness superuser, connected to the `postgres` database (for CREATE/DROP DATABASE). */
export function superuser(s: Services): DbConnection {
  return { host: s.postgres.host, port: s.postgres.port, user: s.postgres.user, password: s.postgres.password, database: 'postgres' };
}
