import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { runTool } from '../child-process.js';
import { PERMANENT_PG_ERRORS, pgClientConfig, type DbConnection } from './connection.js';
import { restoreDump } from './restore.js';
import { PG_INSTALL_HINT, resolvePgTool } from './tools.js';

/**
 * Restores a `critical`/`weekly-full` dump (whole schema, rows of the important tables only; see
 * critical-scope.ts) on its own into an empty database. Everything but the foreign keys goes in
 * with pg_restore as usual; then each foreign key is added, and one whose rows point into a table
 * this backup holds no rows of (an invoice's customer) is added NOT VALID instead: the
 * constraint is kept for new rows, and what it cannot vouch for is named in the result. Nothing
 * is dropped or left out.
 */
export async function restoreScopedDump(
  db: DbConnection,
  name: string,
  dumpFile: string,
  options: { workDir: string; pgBinDir?: string; serverMajor?: number; jobs?: number; keepOwners?: boolean; signal?: AbortSignal },
): Promise<{ notValidConstraints: string[] }> {
  const pgRestore = await resolvePgTool('pg_restore', { binDir: options.pgBinDir, serverMajor: options.serverMajor });
  const run = (args: string[]) => runTool(pgRestore, args, { signal: options.signal, permanentErrors: PERMANENT_PG_ERRORS, installHint: PG_INSTALL_HINT });
  const toc = (await run(['--list', '--', dumpFile])).split('\n');
  const isForeignKey = (line: string) => /^\d+; \d+ \d+ FK CONSTRAINT /.test(line);
  const allButForeignKeys = join(options.workDir, 'restore-without-fk.list');
  const foreignKeys = join(options.workDir, 'restore-fk.list');
  await writeFile(allButForeignKeys, toc.filter((line) => !isForeignKey(line)).join('\n') + '\n', { mode: 0o600 });
  await writeFile(foreignKeys, toc.filter(isForeignKey).join('\n') + '\n', { mode: 0o600 });
  await restoreDump(db, name, dumpFile, { ...options, useList: allButForeignKeys });

  const script = await run(['--use-list', foreignKeys, ...(options.keepOwners ? [] : ['--no-owner']), '--file=-', '--', dumpFile]);
  const client = new pg.Client(pgClientConfig(db, name));
  await client.connect();
  const notValid: string[] = [];
  try {
    for (const { constraint, statement } of foreignKeyStatements(script)) {
      await client.query('BEGIN');
      try {
        await client.query(statement);
      } catch (error) {
        if ((error as { code?: string }).code !== '23503') throw error;
        await client.query('ROLLBACK');
        await client.query('BEGIN');
        await client.query(notValidStatement(statement));
        notValid.push(constraint);
      }
      await client.query('COMMIT');
    }
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    await client.end();
  }
  return { notValidConstraints: notValid };
}

/**
 * The `ALTER TABLE ... ADD CONSTRAINT ... FOREIGN KEY ...;` statements of a pg_restore script of
 * FK CONSTRAINT entries, each with the name pg_dump's comment gives it (`table constraint`).
 */
export function foreignKeyStatements(script: string): Array<{ constraint: string; statement: string }> {
  const blocks = script.split(/^-- Name: /m).slice(1);
  return blocks.map((block) => {
    const [header = '', ...rest] = block.split('\n');
    // `-- Name: invoices invoices_customer_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -`
    const match = /^(.*); Type: FK CONSTRAINT; Schema: (.*); Owner: /.exec(header);
    const constraint = match ? `${match[2]}.${match[1]}` : header;
    // Comments and psql meta-commands (`\unrestrict` closes scripts of patched pg_dump releases) are not SQL.
    const statement = rest.filter((line) => !line.startsWith('--') && !line.startsWith('\\')).join('\n').trim();
    if (!/^ALTER TABLE [\s\S]* ADD CONSTRAINT [\s\S]*;$/.test(statement)) throw new Error(`unexpected pg_restore output for foreign key ${constraint}: ${statement.slice(0, 200)}`);
    return { constraint, statement };
  });
}

export function notValidStatement(statement: string): string {
  return `${statement.replace(/;\s*$/, '')} NOT VALID;`;
}
