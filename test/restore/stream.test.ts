import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchDecrypted } from '../../activities/restore-stream.js';
import { decryptStream, encryptStream, loadDecryptionKeys, loadRecipientKeys, type DecryptionKeys } from '../../src/crypto/openpgp.js';
import type { ArtifactSummary } from '../../src/restore/report.js';
import { LocalRepository } from '../../src/storage/local.js';
import { services } from '../helpers/services.js';

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

// The one-pass restore of an OpenPGP artifact (download -> sha256 of the stored bytes ->
// decrypt -> .plain), with the test keyring and a real local repository.
describe('fetchDecrypted', () => {
  const s = services();
  let root: string;
  let staging: string;
  let keys: DecryptionKeys;
  let repository: LocalRepository;
  const plaintext = randomBytes(3 * 1024 * 1024);
  let ciphertext: Buffer;
  const key = 'test/db/stream.dump.gpg';
  const artifact = (): ArtifactSummary => ({ key, size: ciphertext.length, sha256: sha256(ciphertext), encryption: 'openpgp', format: 'pg_dump-custom' });
  const store = async (bytes: Buffer) => {
    await mkdir(join(root, 'test/db'), { recursive: true });
    await writeFile(join(root, key), bytes);
  };
  const decrypt = (input: Readable) => decryptStream(input, keys);

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'stream-repo-'));
    repository = new LocalRepository({ root });
    keys = await loadDecryptionKeys([{ file: s.gnupg.privateKeyPath, passphrase: s.gnupg.passphrase, passphraseFrom: 'GPG_PASSPHRASE' }], s.gnupg.privateKeyPath);
    const encrypted = await encryptStream(Readable.from([plaintext]), await loadRecipientKeys(s.gnupg.publicKeyPath, s.gnupg.recipient));
    const chunks: Buffer[] = [];
    for await (const chunk of encrypted) chunks.push(Buffer.from(chunk as Uint8Array));
    ciphertext = Buffer.concat(chunks);
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  const freshStaging = async () => {
    staging = await mkdtemp(join(tmpdir(), 'stream-staging-'));
    return staging;
  };

  it('writes the plaintext as <artifact>.plain once the stored bytes matched the manifest', async () => {
    await store(ciphertext);
    const dir = await freshStaging();
    let progress = 0;
    const digest = await fetchDecrypted(repository, 'db', artifact(), dir, decrypt, { onProgress: (bytes) => (progress = bytes) });
    expect(digest).toEqual({ size: plaintext.length, sha256: sha256(plaintext) });
    expect(await readdir(dir)).toEqual(['db.plain']);
    expect(sha256(await readFile(join(dir, 'db.plain')))).toBe(sha256(plaintext));
    // Progress counts the stored bytes.
    expect(progress).toBe(ciphertext.length);
    await rm(dir, { recursive: true });
  });

  for (const [what, offset] of [
    ['in the middle (the decryption fails only at the end)', () => Math.floor(ciphertext.length / 2)],
    ['in the first packet (the decryption fails at once; the rest is still hashed)', () => 3],
  ] as const) {
    it(`a stored byte altered ${what}: ArtifactChecksumMismatch, not retryable, no plaintext left`, async () => {
      const expected = artifact();
      const altered = Buffer.from(ciphertext);
      altered[offset()]! ^= 0x40;
      await store(altered);
      const dir = await freshStaging();
      const error = await fetchDecrypted(repository, 'db', expected, dir, decrypt).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ApplicationFailure);
      expect(error).toMatchObject({ type: 'ArtifactChecksumMismatch', nonRetryable: true });
      expect((error as Error).message).toContain(`expected sha256 ${expected.sha256} (${expected.size} bytes), got sha256 ${sha256(altered)}`);
      expect(await readdir(dir)).toEqual([]);
      await rm(dir, { recursive: true });
    });
  }

  it('a stored object cut short: ArtifactChecksumMismatch, no plaintext left', async () => {
    const expected = artifact();
    await store(ciphertext.subarray(0, ciphertext.length - 100));
    const dir = await freshStaging();
    await expect(fetchDecrypted(repository, 'db', expected, dir, decrypt)).rejects.toMatchObject({ type: 'ArtifactChecksumMismatch' });
    expect(await readdir(dir)).toEqual([]);
    await rm(dir, { recursive: true });
  });
});
