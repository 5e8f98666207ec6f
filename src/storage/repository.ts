import type { Readable } from 'node:stream';

/**
 * ONE storage interface for every place a backup is kept (restic's shape): the local
 * BACKUP_DIR, an S3 bucket, a remote host over SFTP. Every backend passes the same contract
 * suite (test/storage/contract.ts), so no backend drifts.
 *
 * Keys are relative POSIX paths in the backup layout, e.g. `prod/db/20261126T170000Z-daily.dump`
 * (see src/layout.ts). A backend maps them under its own root (BACKUP_DIR, `S3_PREFIX/`,
 * REMOTE_DIR). Keys never contain `..`, a leading `/`, or a backslash: backends reject them.
 */
export interface ObjectInfo {
  key: string;
  size: number;
  modifiedAt: Date;
}

export interface PutOptions {
  /** Expected size and sha256 (hex) of the content: the backend verifies what it stored. */
  expected: { size: number; sha256: string };
  /** User metadata (S3 stores it as x-amz-meta-*; other backends may ignore it). */
  metadata?: Record<string, string>;
  /**
   * Object tags, which S3 Lifecycle rules select on (S16, src/lifecycle.ts). Only the S3
   * backend stores them; the local and SFTP backends ignore them (they have no lifecycle).
   */
  tags?: Record<string, string>;
  /** Called with the total number of bytes sent so far (heartbeats, progress). */
  onProgress?: (bytesSent: number) => void;
  signal?: AbortSignal;
  /**
   * Replace an existing object on purpose, also in an immutable (S3 Object Lock) repository,
   * where the replaced version stays stored and locked. Only `pin`/`unpin` rewrite a manifest;
   * every other put is refused there when the key holds other content. Backends that always
   * replace ignore it.
   */
  overwrite?: boolean;
  /**
   * The source is a staged artifact (activities/staging.ts): its bytes were written once, under
   * a temporary name renamed into place, and are never written again; `expected` is the digest
   * computed while they were written. A backend on the source's own file system may then put it
   * by hard link, checking its size but not re-reading its bytes (LocalRepository). Other
   * backends ignore it: they send the bytes and verify what they stored.
   */
  staged?: boolean;
}

export interface GetOptions {
  onProgress?: (bytesReceived: number) => void;
  signal?: AbortSignal;
}

export interface Repository {
  /** `local`, `s3`, `sftp`, or the configured name of a second S3 repository. */
  readonly name: string;

  /**
   * Stores the file at `sourcePath` under `key`, atomically: readers see either nothing or
   * the whole object (temporary name + rename, or a completed multipart upload). Verifies the
   * stored size and sha256 against `expected` before returning and throws
   * `IntegrityError` on mismatch. Putting the same content again is a no-op success
   * (idempotent retries).
   */
  putFile(key: string, sourcePath: string, options: PutOptions): Promise<void>;

  /** Stores a small object (a manifest, a drill report) atomically. */
  putBytes(key: string, body: Uint8Array, options?: Omit<PutOptions, 'expected' | 'onProgress'>): Promise<void>;

  /** Downloads `key` to `destPath` (written to a temporary name, then renamed). */
  getFile(key: string, destPath: string, options?: GetOptions): Promise<void>;

  /** Reads a small object whole (manifests, reports). */
  getBytes(key: string): Promise<Buffer>;

  /** A stream of the object's bytes, for re-reading without a copy (verify). */
  openRead(key: string, options?: { signal?: AbortSignal }): Promise<Readable>;

  /** Size and time of `key`, or undefined when it does not exist. */
  stat(key: string): Promise<ObjectInfo | undefined>;

  /** Every object whose key starts with `prefix` (recursive), in no particular order. */
  list(prefix: string): Promise<ObjectInfo[]>;

  /** Deletes `key`; deleting a missing key succeeds (idempotent). */
  delete(key: string): Promise<void>;

  /** Releases connections. */
  close(): Promise<void>;
}

/** What a backend stored differs from what it was given: never retried into acceptance. */
export class IntegrityError extends Error {
  constructor(
    readonly key: string,
    readonly expected: { size: number; sha256: string },
    readonly actual: { size: number; sha256?: string },
    /** What else differed, e.g. a checksum the server computed over the bytes it stored. */
    detail?: string,
  ) {
    super(
      `${key}: stored object does not match: expected ${expected.size} bytes sha256 ${expected.sha256}, ` +
        `got ${actual.size} bytes` + (actual.sha256 ? ` sha256 ${actual.sha256}` : '') + (detail ? `: ${detail}` : ''),
    );
    this.name = 'IntegrityError';
  }
}

/** `key` does not exist in the repository (getFile, getBytes, openRead). */
export class ObjectNotFoundError extends Error {
  constructor(
    readonly repository: string,
    readonly key: string,
  ) {
    super(`${repository}: no object ${JSON.stringify(key)}`);
    this.name = 'ObjectNotFoundError';
  }
}

/**
 * A backend operation failed for a reason other than the typed errors above (network, permission,
 * disk full, ...): names the repository, the operation and the key; `cause` holds the original.
 */
export class StorageError extends Error {
  constructor(
    readonly repository: string,
    readonly operation: string,
    readonly key: string,
    cause: unknown,
  ) {
    super(`${repository}: ${operation} ${JSON.stringify(key)} failed: ${describeCause(cause)}`, { cause });
    this.name = 'StorageError';
  }
}

/**
 * The cause's message, with the HTTP status when an SDK error carries one: an S3 server that
 * answers 5xx to a HEAD (no body) surfaces as "UnknownError", which says nothing alone.
 */
function describeCause(cause: unknown): string {
  const message = cause instanceof Error ? cause.message : String(cause);
  const status = (cause as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
  return status === undefined || message.includes(String(status)) ? message : `${message} (HTTP ${status})`;
}

/**
 * What a backend throws for `error` raised during `operation` on `key`: the typed errors
 * (IntegrityError, ObjectNotFoundError, StorageError) and aborts (name `AbortError`, so callers
 * can tell a cancellation) pass unchanged; anything else is wrapped in a StorageError. Whatever
 * fails after the caller's `signal` aborted is the abort: an HTTP client reports the socket it
 * destroyed for it (Node 24: "aborted", ECONNRESET) before anything notices the signal.
 */
export function storageFailure(repository: string, operation: string, key: string, error: unknown, signal?: AbortSignal): Error {
  if (error instanceof IntegrityError || error instanceof ObjectNotFoundError || error instanceof StorageError) return error;
  // A refusal to replace an immutable object (src/storage/s3.ts): permanent, keep its name.
  if (error instanceof Error && error.name === 'ImmutableObjectError') return error;
  if (error instanceof Error && error.name === 'AbortError') return error;
  if (signal?.aborted) return new DOMException(`${repository}: ${operation} ${JSON.stringify(key)} was aborted`, 'AbortError');
  return new StorageError(repository, operation, key, error);
}

/** Throws unless `key` is a relative POSIX path without `..` segments (S19: no escaping the root). */
export function assertSafeKey(key: string): void {
  const bad =
    key.length === 0 ||
    key.startsWith('/') ||
    key.includes('\\') ||
    key.includes('\0') ||
    key.split('/').some((segment) => segment === '' || segment === '.' || segment === '..');
  if (bad) throw new Error(`invalid storage key ${JSON.stringify(key)}: expected a relative path without '..'`);
}

/** Throws unless `prefix` is empty (everything) or a key prefix inside the root; a trailing `/` is allowed. */
export function assertSafePrefix(prefix: string): void {
  if (prefix === '') return;
  assertSafeKey(prefix.endsWith('/') ? prefix.slice(0, -1) : prefix);
}
