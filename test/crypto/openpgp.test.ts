import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  OpenPgpKeyError,
  decryptStream,
  encryptStream,
  loadDecryptionKeys,
  loadRecipientKeys,
  messageRecipientKeyIds,
  recipientKeyRefs,
  type DecryptionKeys,
} from '../../src/crypto/openpgp.js';
import {
  createExpiredKey,
  createSignOnlyKey,
  createTestKeyring,
  passphraseFile,
  runGpg,
  stopGpgAgent,
  type TestKey,
  type TestKeyring,
} from '../helpers/gpg.js';

const MiB = 1024 * 1024;

/** The keys of one GPG_PRIVATE_KEY_FILE, unlocked with GPG_PASSPHRASE. */
function loadPrivateKey(file: string, passphrase: string): Promise<DecryptionKeys> {
  return loadDecryptionKeys([{ file, passphrase, passphraseFrom: 'GPG_PASSPHRASE' }], file);
}
const DAY_MS = 86_400_000;

/**
 * Peak resident memory, sampled in the data path: a timer would not fire while openpgp's
 * promise chain drains a synchronous source, and would miss the peak.
 */
class PeakRss {
  readonly baseline = process.memoryUsage.rss();
  private peak = this.baseline;

  readonly sample = (): void => {
    this.peak = Math.max(this.peak, process.memoryUsage.rss());
  };

  get growth(): number {
    return this.peak - this.baseline;
  }
}

/** Random bytes produced on the fly (never held whole), hashed as they are produced. */
function randomSource(totalBytes: number, onChunk?: () => void): { stream: Readable; sha256: () => string } {
  const chunkBytes = 64 * 1024;
  const hash = createHash('sha256');
  let produced = 0;
  const stream = new Readable({
    read() {
      onChunk?.();
      if (produced >= totalBytes) {
        this.push(null);
        return;
      }
      const chunk = randomBytes(Math.min(chunkBytes, totalBytes - produced));
      produced += chunk.length;
      hash.update(chunk);
      this.push(chunk);
    },
  });
  return { stream, sha256: () => hash.digest('hex') };
}

async function sha256Of(stream: Readable, onChunk?: () => void): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of stream) {
    onChunk?.();
    hash.update(chunk as Buffer);
  }
  return hash.digest('hex');
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

async function errorOf(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof Error) return error;
    throw new Error(`rejected with a non-Error: ${String(error)}`);
  }
  throw new Error('expected a rejection, but the promise resolved');
}

describe('OpenPGP streaming, interoperable with GnuPG 2.2', () => {
  let dir: string;
  let keyring: TestKeyring;
  let otherKeyring: TestKeyring;
  let expiredKey: TestKey;
  let signOnlyKey: TestKey;
  let loopback: string[];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'erp4-openpgp-'));
    keyring = await createTestKeyring(join(dir, 'main'));
    otherKeyring = await createTestKeyring(join(dir, 'other'));
    expiredKey = await createExpiredKey(keyring, dir);
    signOnlyKey = await createSignOnlyKey(keyring, dir);
    loopback = ['--pinentry-mode', 'loopback', '--passphrase-file', await passphraseFile(keyring)];
  });

  afterAll(async () => {
    if (keyring) await stopGpgAgent(keyring.home);
    if (otherKeyring) await stopGpgAgent(otherKeyring.home);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** The key id of the keyring's encryption subkey, as gpg reports it. */
  async function gpgEncryptionSubkeyId(ring: TestKeyring): Promise<string> {
    const { stdout } = await runGpg(ring.home, ['--with-colons', '--list-keys', ring.recipient]);
    const sub = stdout
      .toString('utf8')
      .split('\n')
      .map((line) => line.split(':'))
      .find((fields) => fields[0] === 'sub' && fields[11]?.includes('e'));
    if (sub?.[4] === undefined) throw new Error(`gpg lists no encryption subkey for ${ring.recipient}`);
    return sub[4];
  }

  async function encryptToFile(input: Readable, path: string): Promise<void> {
    const keys = await loadRecipientKeys(keyring.publicKeyPath, keyring.recipient);
    await pipeline(await encryptStream(input, keys), createWriteStream(path));
  }

  describe('loadRecipientKeys', () => {
    it('selects the key by e-mail, uid name, fingerprint or subkey id', async () => {
      const subkeyId = await gpgEncryptionSubkeyId(keyring);
      const [byEmail] = await loadRecipientKeys(keyring.publicKeyPath, 'BACKUP@example.test');
      expect(byEmail).toBeDefined();
      const fingerprint = byEmail!.getFingerprint().toUpperCase();
      for (const recipient of ['Backup Test', `<${keyring.recipient}>`, fingerprint, `0x${subkeyId}`]) {
        const keys = await loadRecipientKeys(keyring.publicKeyPath, recipient);
        expect(keys.map((key) => key.getFingerprint().toUpperCase()), recipient).toEqual([fingerprint]);
      }
    });

    it('names GPG_RECIPIENT and GPG_PUBLIC_KEY_FILE when no key matches', async () => {
      const error = await errorOf(loadRecipientKeys(keyring.publicKeyPath, 'nobody@example.test'));
      expect(error).toBeInstanceOf(OpenPgpKeyError);
      expect(error.message).toContain(`GPG_PUBLIC_KEY_FILE (${keyring.publicKeyPath}) holds no key matching`);
      expect(error.message).toContain('GPG_RECIPIENT "nobody@example.test"');
      expect(error.message).toContain('Backup Test <backup@example.test>');
    });

    it('rejects an empty GPG_RECIPIENT', async () => {
      const error = await errorOf(loadRecipientKeys(keyring.publicKeyPath, '  '));
      expect(error).toBeInstanceOf(OpenPgpKeyError);
      expect(error.message).toBe('GPG_RECIPIENT is empty');
    });

    it('rejects an expired key and says when it expired', async () => {
      const error = await errorOf(loadRecipientKeys(expiredKey.publicKeyPath, 'expired@example.test'));
      expect(error).toBeInstanceOf(OpenPgpKeyError);
      expect(error.message).toContain(
        `the key in GPG_PUBLIC_KEY_FILE (${expiredKey.publicKeyPath}) matching GPG_RECIPIENT "expired@example.test", ${expiredKey.fingerprint}`,
      );
      const expiry = /it expired on (\S+)$/.exec(error.message)?.[1];
      expect(expiry, error.message).toBeDefined();
      // Made two days ago with a one-day lifetime.
      expect(Math.abs(new Date(expiry!).getTime() - (Date.now() - DAY_MS))).toBeLessThan(10 * 60_000);
    });

    it('accepts the expired key at a date when it was still valid', async () => {
      const keys = await loadRecipientKeys(expiredKey.publicKeyPath, 'expired@example.test', new Date(Date.now() - 1.5 * DAY_MS));
      expect(keys.map((key) => key.getFingerprint().toUpperCase())).toEqual([expiredKey.fingerprint]);
    });

    it('rejects a sign-only key', async () => {
      const error = await errorOf(loadRecipientKeys(signOnlyKey.publicKeyPath, 'sign-only@example.test'));
      expect(error).toBeInstanceOf(OpenPgpKeyError);
      expect(error.message).toContain(
        `the key in GPG_PUBLIC_KEY_FILE (${signOnlyKey.publicKeyPath}) matching GPG_RECIPIENT "sign-only@example.test", ${signOnlyKey.fingerprint}`,
      );
      expect(error.message).toContain('it has no encryption-capable subkey');
    });

    it('names GPG_PUBLIC_KEY_FILE when it is missing or not a key', async () => {
      const missing = join(dir, 'missing.asc');
      const missingError = await errorOf(loadRecipientKeys(missing, keyring.recipient));
      expect(missingError).toBeInstanceOf(OpenPgpKeyError);
      expect(missingError.message).toMatch(new RegExp(`^GPG_PUBLIC_KEY_FILE \\(${missing}\\) cannot be read: .*ENOENT`));

      const garbage = join(dir, 'garbage.asc');
      await writeFile(garbage, 'this is not a key\n');
      const garbageError = await errorOf(loadRecipientKeys(garbage, keyring.recipient));
      expect(garbageError).toBeInstanceOf(OpenPgpKeyError);
      expect(garbageError.message).toContain(`GPG_PUBLIC_KEY_FILE (${garbage}) does not hold an OpenPGP key`);
    });
  });

  describe('loadPrivateKey', () => {
    it('names GPG_PASSPHRASE on a wrong passphrase without printing either passphrase', async () => {
      const wrong = 'definitely-not-the-passphrase';
      const error = await errorOf(loadPrivateKey(keyring.privateKeyPath, wrong));
      expect(error).toBeInstanceOf(OpenPgpKeyError);
      expect(error.message).toContain(`GPG_PASSPHRASE is wrong for the private key in GPG_PRIVATE_KEY_FILE (${keyring.privateKeyPath})`);
      expect(error.message).not.toContain(wrong);
      expect(error.message).not.toContain(keyring.passphrase);
    });

    it('rejects a public key file as GPG_PRIVATE_KEY_FILE', async () => {
      const error = await errorOf(loadPrivateKey(keyring.publicKeyPath, keyring.passphrase));
      expect(error).toBeInstanceOf(OpenPgpKeyError);
      expect(error.message).toContain(`GPG_PRIVATE_KEY_FILE (${keyring.publicKeyPath}) holds only public keys`);
    });

    it('unlocks the key exported by gpg', async () => {
      const { keys } = await loadPrivateKey(keyring.privateKeyPath, keyring.passphrase);
      expect(keys).toHaveLength(1);
      expect(keys[0]!.isDecrypted()).toBe(true);
      expect(keys[0]!.getUserIDs()).toEqual(['Backup Test <backup@example.test>']);
    });
  });

  describe('encryptStream', () => {
    it('writes what gpg --decrypt turns back into identical bytes (20 MiB)', async () => {
      const source = randomSource(20 * MiB);
      const encryptedPath = join(dir, 'random.gpg');
      const started = performance.now();
      await encryptToFile(source.stream, encryptedPath);
      const seconds = (performance.now() - started) / 1000;
      console.log(`openpgp encryption to file: ${(20 / seconds).toFixed(0)} MB/s (20 MiB, incl. random generation)`);

      const { stdout } = await runGpg(keyring.home, [...loopback, '--decrypt', encryptedPath]);
      expect(stdout.length).toBe(20 * MiB);
      expect(sha256(stdout)).toBe(source.sha256());
    });

    it('uses a v3 PKESK for the v4 encryption subkey, SEIPD v1 with MDC and no compression', async () => {
      const encryptedPath = join(dir, 'packets.gpg');
      await encryptToFile(Readable.from([randomBytes(256 * 1024)]), encryptedPath);
      const { stdout } = await runGpg(keyring.home, [...loopback, '--list-packets', encryptedPath]);
      const packets = stdout.toString('utf8');
      const subkeyId = await gpgEncryptionSubkeyId(keyring);
      expect(packets).toContain(`:pubkey enc packet: version 3, algo 18, keyid ${subkeyId}`);
      expect(packets).toMatch(/:encrypted data packet:\n\s+length: unknown\n\s+mdc_method: 2/);
      expect(packets).toContain(':literal data packet:');
      expect(packets).not.toContain(':compressed packet:');
      expect(packets).not.toContain('aead');
      // openpgp's own gpg-incompatible choices would show as a v6 PKESK or a SEIPD v2 packet.
      expect(packets).not.toMatch(/version [56]/);
    });

    it('fails the output, rather than ending it cleanly, when the input fails midway', async () => {
      const keys = await loadRecipientKeys(keyring.publicKeyPath, keyring.recipient);
      const failingInput = new Readable({ read() {} });
      failingInput.push(randomBytes(MiB));
      setImmediate(() => failingInput.destroy(new Error('pg_dump exited with code 1')));
      const error = await errorOf(sha256Of(await encryptStream(failingInput, keys)));
      expect(error.message).toContain('pg_dump exited with code 1');
    });

    it('refuses to encrypt to a key that has expired since it was loaded', async () => {
      const keys = await loadRecipientKeys(expiredKey.publicKeyPath, 'expired@example.test', new Date(Date.now() - 1.5 * DAY_MS));
      const input = Readable.from([Buffer.from('x')]);
      const error = await errorOf(encryptStream(input, keys));
      expect(input.destroyed).toBe(true);
      expect(error).toBeInstanceOf(OpenPgpKeyError);
      expect(error.message).toMatch(/it expired on /);
    });

    it('streams 200 MiB through encryption and decryption in flat memory', async () => {
      const totalBytes = 200 * MiB;
      const [keys, privateKey] = await Promise.all([
        loadRecipientKeys(keyring.publicKeyPath, keyring.recipient),
        loadPrivateKey(keyring.privateKeyPath, keyring.passphrase),
      ]);
      const rss = new PeakRss();

      // Encryption alone, for the throughput figure the benchmark cares about.
      const plain = randomSource(totalBytes, rss.sample);
      let started = performance.now();
      await sha256Of(await encryptStream(plain.stream, keys), rss.sample);
      const encryptMBps = totalBytes / MiB / ((performance.now() - started) / 1000);

      // Round trip: encrypted bytes go straight into decryption (which must not wait for the MDC).
      const source = randomSource(totalBytes, rss.sample);
      started = performance.now();
      const roundTrip = await sha256Of(await decryptStream(await encryptStream(source.stream, keys), privateKey), rss.sample);
      const roundTripMBps = totalBytes / MiB / ((performance.now() - started) / 1000);
      console.log(
        `openpgp throughput (incl. random generation + sha256): encrypt ${encryptMBps.toFixed(0)} MB/s, ` +
          `encrypt+decrypt ${roundTripMBps.toFixed(0)} MB/s; peak RSS growth ${(rss.growth / MiB).toFixed(0)} MiB`,
      );
      expect(roundTrip).toBe(source.sha256());
      expect(rss.growth).toBeLessThan(100 * MiB);
    });
  });

  describe('decryptStream', () => {
    it('decrypts what gpg --encrypt wrote (compressed by gpg)', async () => {
      const plainPath = join(dir, 'from-gpg.bin');
      const encryptedPath = join(dir, 'from-gpg.gpg');
      // Compressible bytes first and an explicit algorithm: gpg skips compression when the file
      // starts like an already-compressed one, which random bytes sometimes do.
      const plain = Buffer.concat([Buffer.alloc(2 * MiB, 'compressible '), randomBytes(3 * MiB)]);
      await writeFile(plainPath, plain);
      const encrypt = ['--trust-model', 'always', '--compress-algo', 'zlib', '--encrypt', '-r', keyring.recipient];
      await runGpg(keyring.home, [...encrypt, '--output', encryptedPath, plainPath]);
      const packets = (await runGpg(keyring.home, [...loopback, '--list-packets', encryptedPath])).stdout.toString('utf8');
      expect(packets).toContain(':compressed packet:'); // so openpgp's decompression path is exercised

      const privateKey = await loadPrivateKey(keyring.privateKeyPath, keyring.passphrase);
      const decrypted = await decryptStream(createReadStream(encryptedPath), privateKey);
      expect(await sha256Of(decrypted)).toBe(sha256(plain));
    });

    it('still decrypts an old backup after its key has expired', async () => {
      const plain = randomBytes(64 * 1024);
      const encryptedPath = join(dir, 'before-expiry.gpg');
      const plainPath = join(dir, 'before-expiry.bin');
      await writeFile(plainPath, plain);
      const whileValid = Math.floor((Date.now() - 1.5 * DAY_MS) / 1000);
      await runGpg(keyring.home, [
        '--faked-system-time',
        `${whileValid}!`,
        '--trust-model',
        'always',
        '--encrypt',
        '-r',
        expiredKey.fingerprint,
        '--output',
        encryptedPath,
        plainPath,
      ]);
      const privateKey = await loadPrivateKey(expiredKey.privateKeyPath, keyring.passphrase);
      expect(await sha256Of(await decryptStream(createReadStream(encryptedPath), privateKey))).toBe(sha256(plain));
    });

    it('names the key the backup is for when GPG_PRIVATE_KEY_FILE holds another key', async () => {
      const encryptedPath = join(dir, 'for-main-key.gpg');
      await encryptToFile(Readable.from([randomBytes(1024)]), encryptedPath);
      const otherKey = await loadPrivateKey(otherKeyring.privateKeyPath, otherKeyring.passphrase);
      const subkeyId = await gpgEncryptionSubkeyId(keyring);
      const input = createReadStream(encryptedPath);
      const error = await errorOf(decryptStream(input, otherKey));
      expect(input.destroyed).toBe(true); // the file descriptor is not leaked
      expect(error).toBeInstanceOf(OpenPgpKeyError);
      expect(error.message).toContain(
        `the backup is encrypted for key id ${subkeyId}; GPG_PRIVATE_KEY_FILE holds ${otherKey.keys[0]!.getFingerprint().toUpperCase()}`,
      );
    });

    it('rejects input that is not an OpenPGP message', async () => {
      const privateKey = await loadPrivateKey(keyring.privateKeyPath, keyring.passphrase);
      const error = await errorOf(decryptStream(Readable.from([Buffer.from('plain text, not OpenPGP\n')]), privateKey));
      expect(error.message).toMatch(/^the backup artifact is not a binary OpenPGP message/);
    });

    it('streams plaintext before the MDC, and fails at the end of a tampered message', async () => {
      const encryptedPath = join(dir, 'tampered.gpg');
      await encryptToFile(randomSource(4 * MiB).stream, encryptedPath);
      const ciphertext = await readFile(encryptedPath);
      // One flipped bit mid-file: CFB flips the same plaintext bit and garbles the next block,
      // which the literal data packet cannot notice; only the MDC at the end can.
      ciphertext[Math.floor(ciphertext.length / 2)]! ^= 0x01;
      const privateKey = await loadPrivateKey(keyring.privateKeyPath, keyring.passphrase);

      const decrypted = await decryptStream(Readable.from([ciphertext]), privateKey);
      let releasedBytes = 0;
      const error = await errorOf(
        (async () => {
          for await (const chunk of decrypted) releasedBytes += (chunk as Buffer).length;
        })(),
      );
      expect(error.message).toMatch(/Modification detected/);
      // Streaming: almost all plaintext was handed out before the MDC check failed.
      expect(releasedBytes).toBeGreaterThan(3 * MiB);
    });
  });

  describe('key rotation: several private keys', () => {
    it('records the encryption subkey, decrypts old and new messages with both keys, and reads the key id from the packets', async () => {
      const oldCiphertext = join(dir, 'rotation-old.gpg');
      await encryptToFile(Readable.from([Buffer.from('old backup')]), oldCiphertext);
      const newKeys = await loadRecipientKeys(otherKeyring.publicKeyPath, otherKeyring.recipient);
      const newCiphertext = join(dir, 'rotation-new.gpg');
      await pipeline(await encryptStream(Readable.from([Buffer.from('new backup')]), newKeys), createWriteStream(newCiphertext));

      const oldKeys = await loadRecipientKeys(keyring.publicKeyPath, keyring.recipient);
      const [oldRef] = await recipientKeyRefs(oldKeys);
      expect(oldRef).toEqual({ keyId: await gpgEncryptionSubkeyId(keyring), primaryFingerprint: oldKeys[0]!.getFingerprint().toUpperCase() });
      expect(await messageRecipientKeyIds(createReadStream(oldCiphertext))).toEqual([oldRef!.keyId]);

      const both = await loadDecryptionKeys(
        [
          { file: keyring.privateKeyPath, passphrase: keyring.passphrase, passphraseFrom: 'GPG_PASSPHRASE' },
          { file: otherKeyring.privateKeyPath, passphrase: otherKeyring.passphrase, passphraseFrom: 'the passphrase file other.passphrase' },
        ],
        dir,
      );
      expect(both.keys).toHaveLength(2);
      expect(both.keyIds).toContain(oldRef!.keyId);
      expect(Buffer.concat(await (await decryptStream(createReadStream(oldCiphertext), both)).toArray()).toString()).toBe('old backup');
      expect(Buffer.concat(await (await decryptStream(createReadStream(newCiphertext), both)).toArray()).toString()).toBe('new backup');
    });

    it('names the passphrase source of the key it cannot unlock', async () => {
      const error = await errorOf(
        loadDecryptionKeys(
          [
            { file: keyring.privateKeyPath, passphrase: keyring.passphrase, passphraseFrom: 'GPG_PASSPHRASE' },
            { file: otherKeyring.privateKeyPath, passphrase: 'wrong-passphrase', passphraseFrom: 'the passphrase file new.passphrase' },
          ],
          dir,
        ),
      );
      expect(error).toBeInstanceOf(OpenPgpKeyError);
      expect(error.message).toContain(`the passphrase file new.passphrase is wrong for the private key in GPG_PRIVATE_KEY_FILE (${otherKeyring.privateKeyPath})`);
    });

    it('refuses a key source with no private key at all', async () => {
      const error = await errorOf(loadDecryptionKeys([], dir));
      expect(error).toBeInstanceOf(OpenPgpKeyError);
      expect(error.message).toBe(`GPG_PRIVATE_KEY_FILE (${dir}) holds no usable private key`);
    });
  });
});
