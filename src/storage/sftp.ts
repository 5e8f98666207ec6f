import { createHash } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { posix, resolve } from 'node:path';
import { addAbortSignal, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Client, SFTPWrapper } from 'ssh2';
import SftpClient from 'ssh2-sftp-client';
import { assertNotTemporaryKey, isTemporaryName, temporaryName, writeFileAtomically } from './atomic-file.js';
import { assertDigest, sameDigest, Sha256Meter, sha256OfBytes, sha256OfStream, type Digest } from './hash.js';
import {
  assertSafeKey,
  assertSafePrefix,
  IntegrityError,
  ObjectNotFoundError,
  storageFailure,
  type GetOptions,
  type ObjectInfo,
  type PutOptions,
  type Repository,
} from './repository.js';
import { readFilePipelined, writeFilePipelined } from './sftp-pipelined.js';

export interface SftpRepositoryOptions {
  /** Defaults to `sftp`. */
  name?: string;
  host: string;
  port: number;
  username: string;
  /** The private key itself, or the path of its file (REMOTE_SSH_KEY). */
  privateKey: Buffer | string;
  /**
   * The host key to accept, and no other: an OpenSSH public key line (`ssh-ed25519 AAAA...`),
   * a known_hosts line (`host ssh-ed25519 AAAA...`) or a fingerprint (`SHA256:...`, as
   * `ssh-keygen -l` prints it).
   */
  hostKey: string;
  /** Absolute directory on the server the keys map under (REMOTE_DIR). */
  root: string;
  /** What error messages call the host setting; defaults to `REMOTE_HOST`. */
  hostLabel?: string;
  /** How long the SSH handshake may take; default 20 s. */
  readyTimeoutMs?: number;
}

/** The server presented a host key other than the configured one: never retried into acceptance. */
export class HostKeyMismatchError extends Error {
  constructor(
    readonly hostLabel: string,
    readonly host: string,
    readonly port: number,
    readonly expectedFingerprint: string,
    readonly presentedFingerprint: string,
  ) {
    super(
      `${hostLabel} ${host}:${port} presented host key ${presentedFingerprint}, but the configured host key is ` +
        `${expectedFingerprint}: refusing to connect (the host was re-keyed, or something intercepts the connection)`,
    );
    this.name = 'HostKeyMismatchError';
  }
}

/** `SHA256:<base64 without padding>` of an SSH public key blob, as `ssh-keygen -l` prints it. */
export function hostKeyFingerprint(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

/** The key type an SSH public key blob names in its first field (RFC 4253 string). */
function blobKeyType(blob: Buffer): string | undefined {
  if (blob.length < 4) return undefined;
  const length = blob.readUInt32BE(0);
  return length <= blob.length - 4 ? blob.subarray(4, 4 + length).toString('latin1') : undefined;
}

const KEY_TYPE = /^(ssh-|ecdsa-sha2-|sk-)/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * The fingerprint of the configured host key (`SftpRepositoryOptions.hostKey`).
 * Throws, naming `hostKey`, when it is none of the accepted forms.
 */
export function parseHostKey(hostKey: string): string {
  const text = hostKey.trim();
  const fingerprint = /^SHA256:([A-Za-z0-9+/]{43})=?$/.exec(text);
  if (fingerprint) return `SHA256:${fingerprint[1]}`;
  if (text.startsWith('@')) {
    throw new Error(`hostKey: known_hosts markers (${text.split(/\s+/)[0]}) are not supported; give the host's own key`);
  }
  const fields = text.split(/\s+/);
  const typeIndex = fields.findIndex((field) => KEY_TYPE.test(field));
  const type = fields[typeIndex];
  const blobText = fields[typeIndex + 1];
  if (typeIndex >= 0 && type && blobText && BASE64.test(blobText)) {
    const blob = Buffer.from(blobText, 'base64');
    if (blobKeyType(blob) !== type) {
      throw new Error(`hostKey: the ${type} key's data does not describe a ${type} key (a truncated or altered line?)`);
    }
    return hostKeyFingerprint(blob);
  }
  throw new Error(
    'hostKey must be an OpenSSH public key line ("ssh-ed25519 AAAA..."), a known_hosts line or a "SHA256:..." fingerprint',
  );
}

/** ssh2-sftp-client 12 has lstat (stat without following a symbolic link); its types (9.x) lag behind. */
type SftpClientWithLstat = SftpClient & { lstat(path: string): Promise<SftpClient.FileStats> };

/** Bytes per chunk read from a local file being uploaded (the SFTP requests are sized in sftp-pipelined.ts). */
const CHUNK_BYTES = 1024 * 1024;

/** How long removing a temporary file after a failed put may take before it is left behind. */
const CLEANUP_TIMEOUT_MS = 5_000;

/** Waits for `work` to settle, at most `ms`; its outcome is ignored. */
async function settledWithin(work: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([work.catch(() => undefined), new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

/** SSH keepalives: unanswered this many times at this interval, the connection is given up. */
const KEEPALIVE_INTERVAL_MS = 5_000;
const KEEPALIVE_COUNT_MAX = 4;

/** The ssh2 SFTP session of a connected client (ssh2-sftp-client keeps it as `sftp`). */
function sessionOf(client: SftpClient): SFTPWrapper {
  const session = (client as SftpClient & { sftp?: SFTPWrapper }).sftp;
  if (!session) throw new Error('the SFTP session is not open');
  return session;
}

function isNoSuchFile(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  // ssh2 reports the SFTP status (2 = SSH_FX_NO_SUCH_FILE); ssh2-sftp-client sometimes maps it to ENOENT.
  return code === 2 || code === 'ENOENT';
}

/**
 * A directory on a remote host over SFTP (S17's "copy to another host").
 *
 * Only the configured host key is accepted (ssh2 accepts any key unless `hostVerifier` is
 * set). Files are uploaded under a temporary name in the destination directory, verified,
 * then renamed into place (posix-rename@openssh.com, which replaces atomically). Verification
 * re-reads the uploaded file over SFTP and compares size and sha256 with `expected`: it needs
 * nothing on the server but SFTP (the account may be SFTP-only, no shell for `sha256sum`), and
 * checks what the server will hand back at restore time. It costs a second transfer of the
 * file; a backup of a few GB over a LAN takes seconds more.
 */
export class SftpRepository implements Repository {
  readonly name: string;
  private readonly root: string;
  private readonly hostLabel: string;
  private readonly expectedFingerprint: string;
  /** The open connection (or the one being opened); cleared when it closes, so the next call reconnects. */
  private connection: Promise<SftpClient> | undefined;
  /**
   * Remote read streams whose file handle is not closed yet. A stream ends before it closes its
   * handle; close() waits for them, or ending the connection would fail the pending close request.
   */
  private readonly openStreams = new Set<Readable>();
  /** Per connection: aborted when it closes (lostSignal). */
  private readonly lostSignals = new WeakMap<SftpClient, AbortSignal>();

  constructor(private readonly options: SftpRepositoryOptions) {
    this.name = options.name ?? 'sftp';
    this.hostLabel = options.hostLabel ?? 'REMOTE_HOST';
    if (!options.host) throw new Error(`${this.hostLabel} must not be empty`);
    if (!posix.isAbsolute(options.root)) {
      throw new Error(`SftpRepository root must be an absolute remote directory, got ${JSON.stringify(options.root)}`);
    }
    this.root = posix.normalize(options.root);
    this.expectedFingerprint = parseHostKey(options.hostKey);
  }

  private connect(): Promise<SftpClient> {
    if (!this.connection) {
      const connection = this.openConnection();
      this.connection = connection;
      const forget = () => {
        if (this.connection === connection) this.connection = undefined;
      };
      connection.then((client) => client.on('close', forget), forget);
    }
    return this.connection;
  }

  private async openConnection(): Promise<SftpClient> {
    const { host, port, username } = this.options;
    const privateKey = typeof this.options.privateKey === 'string' ? await readFile(this.options.privateKey) : this.options.privateKey;
    // Connection losses between calls are handled by reconnecting on the next call, not logged.
    const client = new SftpClient(this.name, { error: () => {}, end: () => {}, close: () => {} });
    // SSH and SFTP are request/response: with Nagle's algorithm on, each small request waited for
    // the server's delayed ACK (~40 ms per round trip on loopback: a 3 KB put took 440 ms, 6 ms
    // without; the handshake 420 ms). Set as soon as the TCP connection is up, before the handshake.
    const ssh = (client as unknown as { client: Client }).client;
    ssh.once('connect', () => ssh.setNoDelay(true));
    let presentedFingerprint: string | undefined;
    try {
      await client.connect({
        host,
        port,
        username,
        privateKey,
        readyTimeout: this.options.readyTimeoutMs ?? 20_000,
        // A connection whose server stops answering (a hung network path, a frozen host) is
        // closed after ~20 s, so the next call reconnects: without this every retry would
        // reuse the hung connection and wait on it forever.
        keepaliveInterval: KEEPALIVE_INTERVAL_MS,
        keepaliveCountMax: KEEPALIVE_COUNT_MAX,
        hostVerifier: (key: Buffer) => {
          presentedFingerprint = hostKeyFingerprint(key);
          return presentedFingerprint === this.expectedFingerprint;
        },
      });
    } catch (error) {
      if (presentedFingerprint !== undefined && presentedFingerprint !== this.expectedFingerprint) {
        throw new HostKeyMismatchError(this.hostLabel, host, port, this.expectedFingerprint, presentedFingerprint);
      }
      throw error;
    }
    return client;
  }

  /** Errors as StorageError etc. (see storageFailure); a host key mismatch passes unchanged. */
  private failure(operation: string, key: string, error: unknown): Error {
    return error instanceof HostKeyMismatchError ? error : storageFailure(this.name, operation, key, error);
  }

  private remotePath(key: string): string {
    assertSafeKey(key);
    assertNotTemporaryKey(key);
    return posix.join(this.root, key);
  }

  /** The first `size` bytes of the file at `path` (see readFilePipelined). */
  private readStream(sftp: SftpClient, path: string, size: number): Readable {
    const stream = readFilePipelined(sessionOf(sftp), path, size);
    this.openStreams.add(stream);
    const settled = () => this.openStreams.delete(stream);
    stream.once('close', settled);
    stream.once('error', settled);
    return stream;
  }

  /** True when `path` is a regular file with exactly the `expected` content (re-read to be sure). */
  private async holds(sftp: SftpClient, path: string, expected: Digest, signal?: AbortSignal, reading?: () => void): Promise<boolean> {
    const info = await this.lstatOrUndefined(sftp, path);
    if (!info?.isFile || info.size !== expected.size) return false;
    return sameDigest(await sha256OfStream(this.readStream(sftp, path, info.size), signal, reading), expected);
  }

  private async lstatOrUndefined(sftp: SftpClient, path: string): Promise<SftpClient.FileStats | undefined> {
    try {
      return await (sftp as SftpClientWithLstat).lstat(path);
    } catch (error) {
      if (isNoSuchFile(error)) return undefined;
      throw error;
    }
  }

  private async put(key: string, source: () => Readable, expected: Digest, options: Omit<PutOptions, 'expected'>): Promise<void> {
    const path = this.remotePath(key);
    options.signal?.throwIfAborted();
    const sftp = await this.connect();
    const lost = this.lostSignal(sftp);
    const signal = options.signal ? AbortSignal.any([options.signal, lost]) : lost;
    try {
      // Re-reading a large file takes a while: the caller's progress (its heartbeat) goes on,
      // at the bytes sent so far (none before the upload, all of them after it).
      if (await this.holds(sftp, path, expected, signal, () => options.onProgress?.(0))) return;
      const dir = posix.dirname(path);
      await this.ensureDirectory(sftp, dir);
      const temporaryPath = posix.join(dir, temporaryName(posix.basename(path)));
      try {
        const meter = new Sha256Meter({ onProgress: options.onProgress, expect: { key, digest: expected } });
        const upload = (chunks: AsyncIterable<Buffer>) => writeFilePipelined(sessionOf(sftp), temporaryPath, 0o600, chunks, signal);
        await pipeline(source(), meter, upload, { signal });
        await this.verifyRemote(sftp, key, temporaryPath, expected, signal, () => options.onProgress?.(expected.size));
        await this.renameIntoPlace(sftp, temporaryPath, path);
      } catch (error) {
        // Best effort, and bounded (after an abort the link may hang): a temporary file that
        // stays is hidden from list().
        if (!lost.aborted) await settledWithin(sftp.delete(temporaryPath, true), CLEANUP_TIMEOUT_MS);
        throw error;
      }
    } catch (error) {
      // An aborted transfer (the activity timed out: the link may be hung) leaves requests in
      // flight on the connection: start the next call on a new one.
      if (options.signal?.aborted) this.discard(sftp);
      throw lost.aborted ? lost.reason : error;
    }
  }

  /** Forgets `sftp` (if it is still the open connection) and closes it without waiting. */
  private discard(sftp: SftpClient): void {
    void this.connection?.then(
      (current) => {
        if (current === sftp) this.connection = undefined;
      },
      () => undefined,
    );
    sftp.end().catch(() => undefined);
  }

  /**
   * Aborts when the connection closes. Streams on a connection that was reset never end nor
   * fail by themselves (ssh2): without this a put or a read would wait until its caller gives up.
   */
  private lostSignal(sftp: SftpClient): AbortSignal {
    let signal = this.lostSignals.get(sftp);
    if (!signal) {
      const controller = new AbortController();
      signal = controller.signal;
      // Every call in flight on the connection listens to it; each removes its listener when done.
      setMaxListeners(0, signal);
      const { host, port } = this.options;
      sftp.on('close', () => controller.abort(new Error(`${this.hostLabel} ${host}:${port}: the SFTP connection was lost`)));
      this.lostSignals.set(sftp, signal);
    }
    return signal;
  }

  /** mkdir -p that tolerates a concurrent put creating the same directory. */
  private async ensureDirectory(sftp: SftpClient, dir: string): Promise<void> {
    const isDirectory = async () => (await sftp.exists(dir)) === 'd';
    if (await isDirectory()) return;
    await this.ensureDirectory(sftp, posix.dirname(dir));
    try {
      await sftp.mkdir(dir);
    } catch (error) {
      if (!(await isDirectory())) throw error;
    }
  }

  private async verifyRemote(sftp: SftpClient, key: string, path: string, expected: Digest, signal?: AbortSignal, reading?: () => void): Promise<void> {
    const { size } = await sftp.stat(path);
    if (size !== expected.size) throw new IntegrityError(key, expected, { size });
    const stored = await sha256OfStream(this.readStream(sftp, path, size), signal, reading);
    if (!sameDigest(stored, expected)) throw new IntegrityError(key, expected, stored);
  }

  /** posix-rename@openssh.com replaces the target atomically; plain SFTP rename refuses an existing one. */
  private async renameIntoPlace(sftp: SftpClient, from: string, to: string): Promise<void> {
    try {
      await sftp.posixRename(from, to);
    } catch (error) {
      if (!/does not support/i.test((error as Error).message)) throw error;
      await sftp.delete(to, true);
      await sftp.rename(from, to);
    }
  }

  async putFile(key: string, sourcePath: string, options: PutOptions): Promise<void> {
    assertDigest(key, options.expected);
    try {
      await this.put(key, () => createReadStream(sourcePath, { highWaterMark: CHUNK_BYTES }), options.expected, options);
      options.onProgress?.(options.expected.size);
    } catch (error) {
      throw this.failure('putFile', key, error);
    }
  }

  async putBytes(key: string, body: Uint8Array, options: Omit<PutOptions, 'expected' | 'onProgress'> = {}): Promise<void> {
    try {
      await this.put(key, () => Readable.from([body]), sha256OfBytes(body), options);
    } catch (error) {
      throw this.failure('putBytes', key, error);
    }
  }

  /** Opens `key` for reading, after checking it is a regular file. */
  private async openObject(key: string, signal?: AbortSignal): Promise<{ stream: Readable; size: number }> {
    const path = this.remotePath(key);
    signal?.throwIfAborted();
    const sftp = await this.connect();
    const info = await this.lstatOrUndefined(sftp, path);
    if (!info?.isFile) throw new ObjectNotFoundError(this.name, key);
    const stream = this.readStream(sftp, path, info.size);
    // A read from a connection that was reset would wait forever: fail it instead.
    const lost = this.lostSignal(sftp);
    const onLost = () => stream.destroy(lost.reason as Error);
    lost.addEventListener('abort', onLost, { once: true });
    stream.once('close', () => lost.removeEventListener('abort', onLost));
    return { stream: signal ? addAbortSignal(signal, stream) : stream, size: info.size };
  }

  async getFile(key: string, destPath: string, options: GetOptions = {}): Promise<void> {
    try {
      const { stream, size } = await this.openObject(key, options.signal);
      try {
        await writeFileAtomically(resolve(destPath), stream, {
          onProgress: options.onProgress,
          signal: options.signal,
          verify: (written) => {
            if (written.size !== size) throw new Error(`download ended after ${written.size} of ${size} bytes`);
          },
        });
      } finally {
        stream.destroy();
      }
    } catch (error) {
      throw this.failure('getFile', key, error);
    }
  }

  async getBytes(key: string): Promise<Buffer> {
    try {
      const { stream } = await this.openObject(key);
      return Buffer.concat(await stream.toArray());
    } catch (error) {
      throw this.failure('getBytes', key, error);
    }
  }

  async openRead(key: string, options: { signal?: AbortSignal } = {}): Promise<Readable> {
    try {
      return (await this.openObject(key, options.signal)).stream;
    } catch (error) {
      throw this.failure('openRead', key, error);
    }
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    const path = this.remotePath(key);
    try {
      const info = await this.lstatOrUndefined(await this.connect(), path);
      return info?.isFile ? { key, size: info.size, modifiedAt: new Date(info.modifyTime) } : undefined;
    } catch (error) {
      throw this.failure('stat', key, error);
    }
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    assertSafePrefix(prefix);
    // Walk only the deepest directory the prefix names completely ('a/b/c' -> 'a/b').
    const startKey = prefix.slice(0, Math.max(prefix.lastIndexOf('/'), 0));
    const found: ObjectInfo[] = [];
    const walk = async (sftp: SftpClient, dirKey: string): Promise<void> => {
      let entries: SftpClient.FileInfo[];
      try {
        entries = await sftp.list(dirKey ? posix.join(this.root, dirKey) : this.root);
      } catch (error) {
        if (isNoSuchFile(error)) return;
        throw error;
      }
      for (const entry of entries) {
        const key = dirKey ? `${dirKey}/${entry.name}` : entry.name;
        // Symbolic links (type 'l') are neither listed nor followed.
        if (entry.type === 'd' && (`${key}/`.startsWith(prefix) || prefix.startsWith(`${key}/`))) {
          await walk(sftp, key);
        } else if (entry.type === '-' && !isTemporaryName(entry.name) && key.startsWith(prefix)) {
          found.push({ key, size: entry.size, modifiedAt: new Date(entry.modifyTime) });
        }
      }
    };
    try {
      await walk(await this.connect(), startKey);
    } catch (error) {
      throw this.failure('list', prefix, error);
    }
    return found;
  }

  async delete(key: string): Promise<void> {
    const path = this.remotePath(key);
    try {
      await (await this.connect()).delete(path, true);
    } catch (error) {
      throw this.failure('delete', key, error);
    }
  }

  /** Releases the connection; read streams still open (openRead's, say) are destroyed first. */
  async close(): Promise<void> {
    const connection = this.connection;
    this.connection = undefined;
    await Promise.all(
      [...this.openStreams].map(
        (stream) =>
          new Promise<void>((resolve) => {
            stream.once('close', () => resolve());
            stream.once('error', () => resolve());
            stream.destroy();
          }),
      ),
    );
    if (!connection) return;
    const client = await connection.catch(() => undefined);
    await client?.end();
  }
}
