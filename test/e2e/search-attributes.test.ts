import Long from 'long';
import { NativeConnection } from '@temporalio/worker';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { BACKUP_SEARCH_ATTRIBUTES, ensureSearchAttributes } from '../../src/temporal/search-attributes.js';
import { services } from '../helpers/services.js';

describe('the worker makes sure its search attributes exist', () => {
  it('adds BackupId, BackupEnv and BackupKind to a namespace that lacks them, and is idempotent', async () => {
    const s = services();
    const connection = await NativeConnection.connect({ address: s.temporal.address });
    try {
      const namespace = `sa-${process.pid}-${Date.now()}`;
      await connection.workflowService.registerNamespace({ namespace, workflowExecutionRetentionPeriod: { seconds: Long.fromNumber(86_400) } });
      // A new namespace becomes usable after the server refreshes its namespace cache.
      for (let attempt = 0; ; attempt++) {
        try {
          await connection.operatorService.listSearchAttributes({ namespace });
          break;
        } catch (error) {
          if (attempt > 50) throw error;
          await sleep(200);
        }
      }
      const before = (await connection.operatorService.listSearchAttributes({ namespace })).customAttributes ?? {};
      expect(BACKUP_SEARCH_ATTRIBUTES.filter((name) => name in before)).toEqual([]);

      await ensureSearchAttributes(connection, namespace);
      await ensureSearchAttributes(connection, namespace);

      const after = (await connection.operatorService.listSearchAttributes({ namespace })).customAttributes ?? {};
      expect(BACKUP_SEARCH_ATTRIBUTES.filter((name) => name in after)).toEqual([...BACKUP_SEARCH_ATTRIBUTES]);
    } finally {
      await connection.close();
    }
  });
});
