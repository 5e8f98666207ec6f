import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Transform, Writable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { IntegrityError } from './repository.js';

export interface Digest {
  size: number;
  /** Lower-case hex. */
  sha256: string;
}

export interface Sha256MeterOptions {
  /** Called with the running byte count after every chunk. */
  onProgress?: (bytes: number) => void;
  /**
   * When given, the stream fails with an IntegrityError for `key` at its end, before it ends,
   * unless exactly these bytes went through: a consumer that commits only on a clean end (a
   * multipart upload, a rename) then never commits wrong content.
   */
  expect?: { key: string; digest: Digest };
}

/** A pass-through that counts and hashes the bytes flowing through it. */
export class Sha256Meter extends Transform {
  private readonly hash: Hash = createHash('sha256');
  private bytes = 0;
  private result: Digest | undefined;

  constructor(private readonly options: Sha256MeterOptions = {}) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    this.options.onProgress?.(this.bytes);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    this.result = { size: this.bytes, sha256: this.hash.digest('hex') };
    const expect = this.options.expect;
    if (expect && (expect.digest.size !== this.result.size || expect.digest.sha256 !== this.result.sha256)) {
      callback(new IntegrityError(expect.key, expect.digest, this.result));
      return;
    }
    callback();
  }

  /** Size and sha256 of everything that went through; only after the stream ended. */
  digest(): Digest {
    if (!this.result) throw new Error('Sha256Meter.digest() called before the stream ended');
    return this.result;
  }
}

/** Size and sha256 of a stream's bytes (consumes it); `onProgress` sees the bytes read so far. */
export async function sha256OfStream(source: NodeJS.ReadableStream, signal?: AbortSignal, onProgress?: (bytes: number) => void): Promise<Digest> {
  const meter = new Sha256Meter({ onProgress });
  const discard = new Writable({ write: (_chunk, _encoding, callback) => callback() });
  await pipeline(source, meter, discard, { signal });
  return meter.digest();
}

/** Size and sha256 of a local file. */
export function sha256OfFile(path: string, signal?: AbortSignal): Promise<Digest> {
  return sha256OfStream(createReadStream(path), signal);
}

/** Size and sha256 of bytes in memory. */
export function sha256OfBytes(bytes: Uint8Array): Digest {
  return { size: bytes.byteLength, sha256: createHash('sha256').update(bytes).digest('hex') };
}

/** True when two digests describe the same content. */
export function sameDigest(a: Digest, b: Digest): boolean {
  return a.size === b.size && a.sha256 === b.sha256;
}

/** Throws unless `expected` is a usable size and lower-case hex sha256 (names the key). */
export function assertDigest(key: string, expected: Digest): void {
  if (!Number.isSafeInteger(expected.size) || expected.size < 0) {
    throw new Error(`${key}: expected.size must be a non-negative integer, got ${String(expected.size)}`);
  }
  if (!/^[0-9a-f]{64}$/.test(expected.sha256)) {
    throw new Error(`${key}: expected.sha256 must be 64 lower-case hex digits, got ${JSON.stringify(expected.sha256)}`);
  }
}
