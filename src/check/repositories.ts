import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Config } from '../config.js';
import { objectLockDays, objectLockPolicy } from '../object-lock.js';
import { OFFSITE_COPY_REPOSITORY, openRepository, repositoryNames, type RepositoryRole } from '../repositories.js';
import type { Repository } from '../storage/repository.js';
import { S3Repository } from '../storage/s3.js';
import { critical, ok, unknown, within, type ProbeResult } from './probe.js';

/**
 * Every configured repository, probed with the credentials each role uses (S15): the writer
 * puts a small probe object under `<env>/check/`, the reader reads it back (and, on S3, sees the
 * server-side encryption it was stored with), the pruner deletes it. The key is unique per run,
 * so checks on several hosts or at the same time never meet.
 *
 * Decision, S3 Object Lock (S3_OBJECT_LOCK_MODE, S3_COPY_OBJECT_LOCK_MODE): a probe object put
 * there would stay locked (S3_RETENTION decides for how long, a year with gfs) and every run
 * would add one. There the writer puts nothing: the probe asks the bucket's Object Lock
 * configuration with the writer's credentials, as the worker does at start, and the reader
 * lists; write and delete are proven by the first backup and prune.
 */

const TIMEOUT_MS = 30_000;

/** Which variables configure a repository, for the settings a failure names. */
export interface RepositorySettings {
  location: string[];
  credentials(role: RepositoryRole): string[];
  /** Where the bytes go: BACKUP_DIR, REMOTE_DIR (a permission or a full disk). */
  directory?: string;
  encryption?: string[];
  objectLock?: string;
  hostKey?: string;
}

export function repositorySettings(config: Config, name: string): RepositorySettings {
  if (name === 's3') {
    return {
      location: ['S3_BUCKET', 'S3_ENDPOINT_URL'],
      credentials: (role) => [`S3_${role.toUpperCase()}_ACCESS_KEY_ID`, `S3_${role.toUpperCase()}_SECRET_ACCESS_KEY`],
      encryption: config.s3?.sse.serverSideEncryption === 'aws:kms' ? ['SSE_KMS_KEY_ID'] : ['SSE_S3'],
      objectLock: 'S3_OBJECT_LOCK_MODE',
    };
  }
  if (name === OFFSITE_COPY_REPOSITORY) {
    return {
      location: ['S3_COPY_BUCKET', 'S3_COPY_ENDPOINT_URL'],
      // The copy's account has one set of credentials for every role.
      credentials: () => ['S3_COPY_ACCESS_KEY_ID', 'S3_COPY_SECRET_ACCESS_KEY'],
      encryption: config.s3Copy?.sse.serverSideEncryption === 'aws:kms' ? ['S3_COPY_SSE_KMS_KEY_ID'] : ['S3_COPY_SSE_S3'],
      objectLock: 'S3_COPY_OBJECT_LOCK_MODE',
    };
  }
  if (name === 'sftp') {
    return { location: ['REMOTE_HOST', 'REMOTE_PORT'], credentials: () => ['REMOTE_USER', 'REMOTE_SSH_KEY'], directory: 'REMOTE_DIR', hostKey: 'REMOTE_HOST_KEY' };
  }
  return { location: ['BACKUP_DIR'], credentials: () => ['BACKUP_DIR'], directory: 'BACKUP_DIR' };
}

/** Names, codes and HTTP statuses along an error's cause chain. */
function facts(error: unknown): { names: Set<string>; status?: number; text: string } {
  const names = new Set<string>();
  let status: number | undefined;
  let text = '';
  for (let e: unknown = error; e !== undefined && e !== null; e = (e as { cause?: unknown }).cause) {
    const { name, code, Code, $metadata } = e as { name?: unknown; code?: unknown; Code?: unknown; $metadata?: { httpStatusCode?: number } };
    for (const value of [name, code, Code]) if (typeof value === 'string' || typeof value === 'number') names.add(String(value));
    status ??= $metadata?.httpStatusCode;
    text += ` ${e instanceof Error ? e.message : String(e)}`;
    if (!(e instanceof Error)) break;
  }
  return { names, status, text };
}

const REFUSED_CREDENTIALS = ['InvalidAccessKeyId', 'SignatureDoesNotMatch', 'AccessDenied', 'InvalidClientTokenId', 'ExpiredToken', 'CredentialsProviderError', 'InvalidToken'];
const UNREACHABLE = ['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'ECONNRESET', 'TimeoutError'];

/** The settings behind a repository failure: credentials, location, directory, host key or encryption. */
export function repositoryFailureSettings(settings: RepositorySettings, role: RepositoryRole, error: unknown): string[] {
  const { names, status, text } = facts(error);
  const has = (list: readonly string[]) => list.some((name) => names.has(name));
  if (names.has('HostKeyMismatchError') && settings.hostKey) return [settings.hostKey];
  if (has(['NoSuchBucket'])) return settings.location.slice(0, 1);
  if (status === 403 || has(REFUSED_CREDENTIALS) || /authentication methods failed/i.test(text)) return settings.credentials(role);
  if (has(UNREACHABLE) || /timed out while waiting for handshake|did not answer within/i.test(text)) return settings.location;
  if (/KMS|encryption/i.test(text) && settings.encryption) return settings.encryption;
  if (settings.directory && (has(['EACCES', 'EPERM', 'ENOSPC', 'EROFS', 'EDQUOT', 'ENOENT', '2', '3']) || /permission denied|no such file/i.test(text))) {
    return [settings.directory];
  }
  return [...new Set([...settings.location, ...settings.credentials(role)])];
}

/** A key under `<env>/check/` no other run uses: the time, this host, this process. */
export function probeKey(env: string, now: Date): string {
  const host = hostname().replace(/[^A-Za-z0-9-]/g, '-').slice(0, 40) || 'host';
  return `${env}/check/${now.toISOString().replace(/[-:.]/g, '')}-${host}-${process.pid}-${randomUUID().slice(0, 8)}.txt`;
}

export async function probeRepositories(config: Config): Promise<ProbeResult[]> {
  const groups = await Promise.all(repositoryNames(config).map((name) => probeRepository(config, name)));
  return groups.flat();
}

async function probeRepository(config: Config, name: string): Promise<ProbeResult[]> {
  const settings = repositorySettings(config, name);
  const open = (role: RepositoryRole) => openRepository(config, role, name) as Repository;
  const writer = open('writer');
  const reader = open('reader');
  const pruner = open('pruner');
  const fail = (probe: string, role: RepositoryRole, error: unknown) => critical(probe, error, { settings: repositoryFailureSettings(settings, role, error) });
  const step = <T>(what: string, work: Promise<T>) => within(TIMEOUT_MS, `${name}: ${what}`, work);
  const results: ProbeResult[] = [];
  try {
    if (name === 'sftp' && config.remote) {
      const probe = `${name}: host key and login`;
      try {
        // Any request opens the session; the configured host key is the only one accepted.
        await step('connect', writer.stat(`${config.env}/check`));
        results.push(ok(probe, `${config.remote.user}@${config.remote.host}:${config.remote.port} presented the configured host key ${config.remote.hostKey.fingerprint} and accepted REMOTE_SSH_KEY`));
      } catch (error) {
        results.push(fail(probe, 'writer', error));
        const reason = `not connected: see ${probe}`;
        return [...results, unknown(`${name}: write`, reason), unknown(`${name}: read`, reason), unknown(`${name}: delete`, reason)];
      }
    }
    if (writer instanceof S3Repository && writer.immutable) {
      results.push(...(await probeLockedBucket(config, name, settings, writer, reader, step, fail)));
      return results;
    }
    const key = probeKey(config.env, new Date());
    const body = Buffer.from(`erp4-backup check: a probe object, deleted at once (${key})\n`);
    let written = false;
    try {
      await step('put', writer.putBytes(key, body));
      written = true;
      results.push(ok(`${name}: write`, `the writer's credentials put ${key}`));
    } catch (error) {
      results.push(fail(`${name}: write`, 'writer', error));
    }
    try {
      if (written) {
        const read = await step('get', reader.getBytes(key));
        if (!read.equals(body)) throw new Error(`${key} read back differs from what was written`);
      }
      // The catalog is what restores read first.
      await step('list', reader.list(`${config.env}/meta/`));
      results.push(ok(`${name}: read`, written ? `the reader's credentials read ${key} back and list ${config.env}/meta/` : `the reader's credentials list ${config.env}/meta/ (no probe object to read)`));
    } catch (error) {
      results.push(fail(`${name}: read`, 'reader', error));
    }
    if (reader instanceof S3Repository) results.push(await probeEncryption(config, name, settings, reader, written ? key : undefined, step));
    results.push(await probeDelete(name, settings, pruner, reader, written ? key : undefined, step));
    return results;
  } finally {
    await Promise.all([writer, reader, pruner].map((repository) => repository.close().catch(() => undefined)));
  }
}

type Step = <T>(what: string, work: Promise<T>) => Promise<T>;

async function probeEncryption(config: Config, name: string, settings: RepositorySettings, reader: S3Repository, key: string | undefined, step: Step): Promise<ProbeResult> {
  const probe = `${name}: encryption`;
  if (!key) return unknown(probe, 'no probe object: the write failed');
  const expected = (name === OFFSITE_COPY_REPOSITORY ? config.s3Copy?.sse : config.s3?.sse)?.serverSideEncryption;
  try {
    const stored = await step('head', reader.encryptionOf(key));
    if (!stored || stored.serverSideEncryption !== expected) {
      return {
        name: probe,
        status: 'CRITICAL',
        detail: `${key} is stored with server-side encryption ${stored?.serverSideEncryption ?? 'none'}, not ${expected} (S11)`,
        settings: settings.encryption ?? [],
      };
    }
    return ok(probe, `${key} is stored with ${expected}${stored.kmsKeyId ? ` (${stored.kmsKeyId})` : ''}`);
  } catch (error) {
    return critical(probe, error, { settings: repositoryFailureSettings(settings, 'reader', error) });
  }
}

async function probeDelete(name: string, settings: RepositorySettings, pruner: Repository, reader: Repository, key: string | undefined, step: Step): Promise<ProbeResult> {
  const probe = `${name}: delete`;
  if (!key) return unknown(probe, 'no probe object to delete: the write failed');
  try {
    await step('delete', pruner.delete(key));
    // A reader that cannot look is the read probe's finding, not the pruner's.
    const left = await step('stat', reader.stat(key)).catch(() => undefined);
    if (left) throw new Error(`${key} is still there after the delete`);
    return ok(probe, `the pruner's credentials deleted ${key}`);
  } catch (error) {
    const result = critical(probe, error, { settings: repositoryFailureSettings(settings, 'pruner', error) });
    if (name !== OFFSITE_COPY_REPOSITORY) return { ...result, detail: `${result.detail}; the probe object ${key} is left behind` };
    // deploy/iam/offsite-copy.json never deletes: expiring the copy is the off-site account's business (README).
    return {
      ...result,
      status: 'WARNING',
      detail: `${result.detail}; with a copy role that may not delete (deploy/iam/offsite-copy.json) Prune cannot expire the copy from this host, and the probe object ${key} is left for the off-site account's lifecycle rules`,
    };
  }
}

async function probeLockedBucket(
  config: Config,
  name: string,
  settings: RepositorySettings,
  writer: S3Repository,
  reader: Repository,
  step: Step,
  fail: (probe: string, role: RepositoryRole, error: unknown) => ProbeResult,
): Promise<ProbeResult[]> {
  const results: ProbeResult[] = [];
  const probe = `${name}: object lock`;
  const days = objectLockDays(objectLockPolicy(config.prune.s3Retention), `${config.env}/check/probe`);
  try {
    if (await step('object lock configuration', writer.bucketHasObjectLock())) {
      results.push(ok(probe, `the bucket has Object Lock; no probe object is written (it would stay locked ${days} days): the first backup proves write, the first prune delete`));
    } else {
      results.push({
        name: probe,
        status: 'CRITICAL',
        detail: `${settings.objectLock} is set, but the bucket was created without Object Lock; expected a bucket created with --object-lock-enabled-for-bucket, or ${settings.objectLock} unset`,
        settings: settings.objectLock ? [settings.objectLock] : [],
      });
    }
  } catch (error) {
    results.push(fail(probe, 'writer', error));
  }
  try {
    await step('list', reader.list(`${config.env}/meta/`));
    results.push(ok(`${name}: read`, `the reader's credentials list ${config.env}/meta/`));
  } catch (error) {
    results.push(fail(`${name}: read`, 'reader', error));
  }
  return results;
}
