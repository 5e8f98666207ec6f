import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { SFTPWrapper } from 'ssh2';
import SftpClient from 'ssh2-sftp-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFilePipelined, writeFilePipelined } from '../../src/storage/sftp-pipelined.js';
import { services } from '../helpers/services.js';

const sftp = services().sftp;
const dir = join(sftp.rootDir, `pipelined-${Date.now()}-${randomBytes(4).toString('hex')}`);
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** Chunks of uneven sizes, so requests straddle chunk boundaries. */
function* unevenChunks(bytes: Buffer): Generator<Buffer> {
  const sizes = [1, 300 * 1024, 4 * 1024 * 1024 + 7, 65_536];
  for (let offset = 0, i = 0; offset < bytes.length; i++) {
    const size = sizes[i % sizes.length]!;
    yield bytes.subarray(offset, offset + size);
    offset += size;
  }
}

/**
 * The real session, with the most read and write requests it had outstanding at once counted
 * (each call counts until its callback): what "pipelined" means, observed without timing.
 */
function countingInFlight(session: SFTPWrapper): { view: SFTPWrapper; peak: { read: number; write: number } } {
  const peak = { read: 0, write: 0 };
  const outstanding = { read: 0, write: 0 };
  const view = Object.create(session) as SFTPWrapper;
  for (const method of ['read', 'write'] as const) {
    const real = session[method].bind(session) as (...args: unknown[]) => void;
    (view as unknown as Record<string, unknown>)[method] = (...args: unknown[]) => {
      const callback = args.pop() as (...results: unknown[]) => void;
      peak[method] = Math.max(peak[method], ++outstanding[method]);
      real(...args, (...results: unknown[]) => {
        outstanding[method]--;
        callback(...results);
      });
    };
  }
  return { view, peak };
}

describe('pipelined SFTP reads and writes (real sshd)', () => {
  const client = new SftpClient('pipelined-test');
  let session: SFTPWrapper;

  beforeAll(async () => {
    await mkdir(dir, { recursive: true });
    session = await client.connect({ host: sftp.host, port: sftp.port, username: sftp.user, privateKey: await readFile(sftp.privateKeyPath) });
  });
  afterAll(async () => {
    await client.end();
  });

  it('writes and reads back 20 MiB byte for byte, with many requests in flight', async () => {
    const content = randomBytes(20 * 1024 * 1024 + 12_345);
    const path = join(dir, 'round-trip.bin');
    const { view, peak } = countingInFlight(session);
    await writeFilePipelined(view, path, 0o600, Readable.from(unevenChunks(content)));
    expect(sha256(await readFile(path))).toBe(sha256(content));
    const read = Buffer.concat(await readFilePipelined(view, path, content.length).toArray());
    expect(sha256(read)).toBe(sha256(content));
    // ssh2's own streams never have more than one request outstanding.
    expect(peak.write).toBe(16);
    expect(peak.read).toBe(16);
    // A prefix is read as asked: the verification reads exactly the expected size.
    expect(Buffer.concat(await readFilePipelined(session, path, 1000).toArray())).toEqual(content.subarray(0, 1000));
  });

  it('fails a read of a file shorter than expected, naming the byte where it ended', async () => {
    const path = join(dir, 'short.bin');
    await writeFile(path, randomBytes(300 * 1024));
    await expect(readFilePipelined(session, path, 600 * 1024).toArray()).rejects.toThrow(
      `the remote file ended at byte ${300 * 1024}, before the ${510 * 1024} expected`,
    );
  });

  it('refuses to overwrite an existing file', async () => {
    const path = join(dir, 'exists.bin');
    await writeFile(path, 'kept');
    await expect(writeFilePipelined(session, path, 0o600, Readable.from([Buffer.from('new')]))).rejects.toThrow();
    expect(await readFile(path, 'utf8')).toBe('kept');
  });

  it('stops at once with the signal’s reason when aborted mid-transfer', async () => {
    const controller = new AbortController();
    const endless = new Readable({
      read() {
        this.push(randomBytes(1024 * 1024));
      },
    });
    const writing = writeFilePipelined(session, join(dir, 'aborted.bin'), 0o600, endless, controller.signal);
    setTimeout(() => controller.abort(new Error('activity cancelled')), 200);
    await expect(writing).rejects.toThrow('activity cancelled');
    endless.destroy();
  });
});
