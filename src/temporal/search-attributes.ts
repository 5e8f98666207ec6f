// @temporalio/proto is CommonJS: Node's ESM loader only offers its default export.
import proto from '@temporalio/proto';
import type { NativeConnection } from '@temporalio/worker';

/**
 * The Keyword search attributes the workflows upsert (workflows/messages.ts): BackupId,
 * BackupEnv, BackupKind. Upserting an attribute the namespace does not know fails the workflow
 * task, so the worker makes sure they exist before it polls: it adds the missing ones, and
 * where it may not (Temporal Cloud, a locked-down namespace) it refuses to start with the
 * command an administrator runs instead.
 */
export const BACKUP_SEARCH_ATTRIBUTES = ['BackupId', 'BackupEnv', 'BackupKind'] as const;

export async function ensureSearchAttributes(connection: NativeConnection, namespace: string): Promise<void> {
  const keyword = proto.temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD;
  const existing = await connection.operatorService.listSearchAttributes({ namespace });
  const known = existing.customAttributes ?? {};
  const wrongType = BACKUP_SEARCH_ATTRIBUTES.filter((name) => name in known && known[name] !== keyword);
  if (wrongType.length > 0) {
    throw new Error(`search attribute(s) ${wrongType.join(', ')} exist in namespace ${namespace} but are not of type Keyword`);
  }
  const missing = BACKUP_SEARCH_ATTRIBUTES.filter((name) => !(name in known));
  if (missing.length === 0) return;
  try {
    await connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(missing.map((name) => [name, keyword])),
    });
  } catch (error) {
    const commands = missing.map((name) => `temporal operator search-attribute create --namespace ${namespace} --name ${name} --type Keyword`);
    throw new Error(
      `namespace ${namespace} lacks the search attribute(s) ${missing.join(', ')} and this worker may not add them ` +
        `(${(error as Error).message}); have an administrator run:\n  ${commands.join('\n  ')}`,
    );
  }
}
