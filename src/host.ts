import { createHash } from 'node:crypto';

/**
 * A "host" is one worker process with its own disk: its BACKUP_DIR holds its staging area and
 * its local repository. Several worker processes on one machine, each with its own BACKUP_DIR,
 * are several hosts, so the identity is not the OS host name alone.
 *
 * Work that needs a host's disk (staging, the local repository, restore staging, asset restore,
 * cleanup) goes to that host's own task queue, `<TEMPORAL_TASK_QUEUE>/host/<host id>`; every
 * worker polls the shared TEMPORAL_TASK_QUEUE and its host queue (samples-typescript
 * worker-specific-task-queues). A worker restarted with the same BACKUP_DIR is the same host and
 * resumes the work queued for it.
 */
export const HOST_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

/** WORKER_HOST_ID's default: the OS host name (made safe) and 8 hex digits of sha256(BACKUP_DIR). */
export function defaultHostId(osHostName: string, backupDir: string): string {
  const name = osHostName.replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 80) || 'host';
  return `${name}-${createHash('sha256').update(backupDir).digest('hex').slice(0, 8)}`;
}

/** The task queue of one host's disk-bound work. */
export function hostTaskQueue(sharedTaskQueue: string, hostId: string): string {
  return `${sharedTaskQueue}/host/${hostId}`;
}

/**
 * The worker identity Temporal shows for pollers (the Web UI's "Workers" tab): the SDK's default
 * shape `<pid>@<name>`, with the host id as the name, so Prune can tell hosts apart from the
 * pollers of the shared queue (hostOfIdentity).
 */
export function workerIdentity(pid: number, hostId: string): string {
  return `${pid}@${hostId}`;
}

/** The host id in a worker identity made by workerIdentity(), or undefined for other pollers (the CLI, foreign workers). */
export function hostOfIdentity(identity: string): string | undefined {
  const at = identity.indexOf('@');
  if (at < 1 || !/^\d+$/.test(identity.slice(0, at))) return undefined;
  const host = identity.slice(at + 1);
  return HOST_ID.test(host) ? host : undefined;
}
