import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities, type BackupRuntime } from '../../activities/index.js';
import { readCatalog } from '../../src/catalog.js';
import { loadConfig } from '../../src/config.js';
import { createBackupRuntime } from '../../src/runtime.js';
import { createBackupWorker, runWorkers } from '../../src/temporal/worker.js';
import { NightlyBackup } from '../../workflows/index.js';
import { progressQuery, type BackupProgress } from '../../workflows/messages.js';
import { productEnv } from '../helpers/product.js';
import { services } from '../helpers/services.js';

// Issue 16: each artifact goes into every repository as soon as it is staged, not once all are.
// The host worker's archiveAssets (the real one) starts only once the database dump is in EVERY
// repository, or after a deadline: with uploads that wait for all artifacts it never is.
describe('NightlyBackup uploads each artifact as soon as it is staged', () => {
  const s = services();
  let runtime: BackupRuntime;
  let client: Client;
  let taskQueue: string;
  let close: () => Promise<void>;
  let dbEverywhereBeforeArchive: Promise<boolean>;
  let releaseArchive: () => void;

  beforeAll(async () => {
    const config = loadConfig(await productEnv(s, 'upload-as-staged', { s3: true }));
    runtime = await createBackupRuntime(config);
    taskQueue = config.temporal.taskQueue;
    const real = createActivities(runtime);
    let reportDb!: (everywhere: boolean) => void;
    dbEverywhereBeforeArchive = new Promise((resolve) => (reportDb = resolve));
    const released = new Promise<void>((resolve) => (releaseArchive = resolve));
    const dbEverywhere = async () => {
      const listings = await Promise.all([...runtime.repositories.values()].map((repository) => repository.list('test/db/')));
      return listings.every((keys) => keys.length === 1);
    };
    const activities = {
      ...real,
      async archiveAssets(input: Parameters<typeof real.archiveAssets>[0]) {
        const deadline = Date.now() + 30_000;
        while (!(await dbEverywhere()) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 200));
        reportDb(await dbEverywhere());
        await released;
        return real.archiveAssets(input);
      },
    };
    const nativeConnection = await NativeConnection.connect({ address: s.temporal.address });
    const shared = await createBackupWorker({ connection: nativeConnection, namespace: s.temporal.namespace, taskQueue: runtime.host.sharedTaskQueue, runtime });
    const host = await Worker.create({ connection: nativeConnection, namespace: s.temporal.namespace, taskQueue: runtime.host.taskQueue, activities });
    const running = runWorkers([shared, host]);
    const connection = await Connection.connect({ address: s.temporal.address });
    client = new Client({ connection, namespace: s.temporal.namespace });
    close = async () => {
      releaseArchive();
      for (const w of [shared, host]) if (w.getState() === 'RUNNING') w.shutdown();
      await running;
      await Promise.all([...runtime.repositories.values()].map((r) => r.close()));
      await connection.close();
      await nativeConnection.close();
    };
  });
  afterAll(async () => close?.());

  it('puts the database dump into every repository while the PDF archive is still running, and the manifest last', async () => {
    const handle = await client.workflow.start(NightlyBackup, { taskQueue, workflowId: `upload-as-staged-${Date.now()}`, args: [{ kind: 'daily' }] });
    expect(await dbEverywhereBeforeArchive).toBe(true);

    // The progress tells the truth meanwhile: the archive is not staged, no repository holds everything.
    const during: BackupProgress = await handle.query(progressQuery);
    expect(during.phase).toBe('dumping');
    expect(Object.keys(during.artifacts).sort()).toEqual(['db', 'globals']);
    expect(during.repositoriesDone).toEqual([]);
    for (const repository of runtime.repositories.values()) expect((await readCatalog(repository, 'test')).backups).toEqual([]);

    releaseArchive();
    const result = await handle.result();
    const after = await handle.query(progressQuery);
    expect(after).toMatchObject({ phase: 'completed' });
    expect([...after.repositoriesDone].sort()).toEqual([...result.repositories].sort());
    expect(result.repositories.length).toBe(2);
    for (const repository of runtime.repositories.values()) {
      const { backups } = await readCatalog(repository, 'test');
      expect(backups.map((b) => b.id)).toEqual([result.backupId]);
      expect(Object.keys(backups[0]!.artifacts).sort()).toEqual(['assets', 'db', 'globals']);
    }

    // One upload at a time per repository (workflows/upload-as-staged.ts): in the history, each
    // repository's next uploadArtifacts is scheduled only after its previous one closed.
    const uploads = new Map<string, string>();
    const timeline = new Map<string, Array<'scheduled' | 'closed'>>();
    for (const event of (await handle.fetchHistory()).events ?? []) {
      const scheduled = event.activityTaskScheduledEventAttributes;
      if (scheduled?.activityType?.name === 'uploadArtifacts') {
        const { repository } = JSON.parse(Buffer.from(scheduled.input!.payloads![0]!.data!).toString('utf8')) as { repository: string };
        uploads.set(String(event.eventId), repository);
        timeline.set(repository, [...(timeline.get(repository) ?? []), 'scheduled']);
      }
      const closed = event.activityTaskCompletedEventAttributes ?? event.activityTaskFailedEventAttributes;
      const repository = closed && uploads.get(String(closed.scheduledEventId));
      if (repository) timeline.set(repository, [...timeline.get(repository)!, 'closed']);
    }
    expect([...timeline.keys()].sort()).toEqual([...result.repositories].sort());
    for (const [repository, steps] of timeline) expect(steps, repository).toEqual(['scheduled', 'closed', 'scheduled', 'closed', 'scheduled', 'closed']);
  });
});
