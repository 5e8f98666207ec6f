import { readFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import {
  createMessage,
  decrypt,
  decryptKey,
  encrypt,
  enums,
  generateSessionKey,
  readKeys,
  readMessage,
  type Key,
  type KeyID,
  type PartialConfig,
  type PrivateKey,
  type PublicKey,
  type Subkey,
} from 'openpgp';

/**
 * Streaming OpenPGP for backup artifacts, interoperable with GnuPG 2.2: operators must be able
 * to decrypt a backup with plain `gpg --decrypt` when this tool is gone.
 *
 * Trust model for decryption: callers MUST use decrypted bytes only once the ciphertext's sha256
 * matched the backup manifest: verify first and then decrypt, or hash the ciphertext while it is
 * decrypted and discard the plaintext unless it matched (activities/restore-stream.ts). Decryption streams (`allowUnauthenticatedStream`),
 * so plaintext is released before the MDC at the end of the message is checked; the MDC is
 * still checked, and a modified message fails the stream at its end.
 */

/**
 * A key or passphrase setting that cannot work: retrying will not help, the operator has to
 * fix GPG_RECIPIENT, GPG_PUBLIC_KEY_FILE, GPG_PRIVATE_KEY_FILE or GPG_PASSPHRASE.
 */
export class OpenPgpKeyError extends Error {
  override readonly name = 'OpenPgpKeyError';
}

/** A message encrypted for none of the held keys; `missingKeyIds` (upper-case hex) lets callers name them. */
export class MissingRecipientKeyError extends OpenPgpKeyError {
  constructor(
    message: string,
    readonly missingKeyIds: readonly string[],
  ) {
    super(message);
  }
}

const ENCRYPT_CONFIG: PartialConfig = {
  // SEIPD v1 (CFB + MDC): GnuPG 2.2 cannot read SEIPD v2 / AEAD.
  aeadProtect: false,
  // Artifacts are already compressed (pg_dump -Fc, gzip'd tar); compressing again costs CPU for nothing.
  preferredCompressionAlgorithm: enums.compression.uncompressed,
};

// Without it openpgp buffers the whole message to check the MDC before releasing any byte.
const DECRYPT_CONFIG: PartialConfig = { allowUnauthenticatedStream: true };

const ENCRYPTION_FLAGS = enums.keyFlags.encryptCommunication | enums.keyFlags.encryptStorage;

/**
 * Reads the public key(s) in `publicKeyFile` (armoured or binary) and returns those matching
 * `recipient` (GPG_RECIPIENT): a fingerprint or key id (of the primary key or a subkey), or
 * else a case-insensitive substring of a user id, as gpg -r matches. Every matching key must
 * be able to encrypt at `now`, so a backup is never silently encrypted to fewer keys.
 */
export async function loadRecipientKeys(
  publicKeyFile: string,
  recipient: string,
  now: Date = new Date(),
): Promise<PublicKey[]> {
  if (recipient.trim() === '') throw new OpenPgpKeyError('GPG_RECIPIENT is empty');
  const keys = (await readKeyFile(publicKeyFile, 'GPG_PUBLIC_KEY_FILE')).map((key) => key.toPublic());
  const matching = keys.filter((key) => matchesRecipient(key, recipient));
  if (matching.length === 0) {
    const available = keys.map(describeKey).join('; ');
    throw new OpenPgpKeyError(
      `GPG_PUBLIC_KEY_FILE (${publicKeyFile}) holds no key matching GPG_RECIPIENT "${recipient}"; it holds: ${available}`,
    );
  }
  for (const key of matching) {
    await assertCanEncrypt(key, now, `the key in GPG_PUBLIC_KEY_FILE (${publicKeyFile}) matching GPG_RECIPIENT "${recipient}"`);
  }
  return matching;
}

/**
 * Encrypts `input` to `keys` as a binary OpenPGP message that GnuPG 2.2 decrypts: PKESK v3,
 * SEIPD v1 with MDC, one uncompressed literal data packet. Streams in constant memory; an
 * input error fails the returned stream (it never ends cleanly), and a rejection destroys `input`.
 */
export async function encryptStream(input: Readable, keys: readonly PublicKey[], now: Date = new Date()): Promise<Readable> {
  return destroyInputOnFailure(input, async () => {
    if (keys.length === 0) throw new OpenPgpKeyError('no recipient keys to encrypt to (GPG_RECIPIENT)');
    // The keys were checked when loaded; a long-running worker may outlive their expiry.
    for (const key of keys) await assertCanEncrypt(key, now, 'the GPG_RECIPIENT key');
    const encryptionKeys = [...keys];
    // openpgp picks SEIPD v2 for keys whose features advertise it, whatever aeadProtect says;
    // a session key without an AEAD algorithm pins SEIPD v1.
    const { data, algorithm } = await generateSessionKey({ encryptionKeys, date: now, config: ENCRYPT_CONFIG });
    const message = await createMessage({ binary: toWebStream(input), format: 'binary', date: now });
    const encrypted: unknown = await encrypt({
      message,
      encryptionKeys,
      sessionKey: { data, algorithm },
      date: now,
      format: 'binary',
      config: ENCRYPT_CONFIG,
    });
    return fromWebStream(encrypted);
  });
}

/**
 * The key that encrypted an artifact, as the manifest records it (src/manifest.ts): the
 * encryption subkey (or primary key) a PKESK packet names, and the primary key it belongs to,
 * so an operator can tell which private key a backup needs after the key was rotated.
 */
export interface RecipientKeyRef {
  /** 16 upper-case hex digits: the key id in the message's PKESK packet. */
  keyId: string;
  /** 40 upper-case hex digits: the fingerprint of the primary key holding that (sub)key. */
  primaryFingerprint: string;
}

/**
 * The (sub)keys `encryptStream` encrypts to at `now`, one per recipient key: what the manifest
 * records for each encrypted artifact.
 */
export async function recipientKeyRefs(keys: readonly PublicKey[], now: Date = new Date()): Promise<RecipientKeyRef[]> {
  const refs: RecipientKeyRef[] = [];
  for (const key of keys) {
    const encryptionKey = await key.getEncryptionKey(undefined, now);
    refs.push({ keyId: encryptionKey.getKeyID().toHex().toUpperCase(), primaryFingerprint: key.getFingerprint().toUpperCase() });
  }
  return refs;
}

/**
 * The private keys that decrypt backups, unlocked: several after a key rotation (old backups
 * stay encrypted to the old key). `keyIds` holds the key id of every primary key and subkey.
 */
export interface DecryptionKeys {
  keys: readonly PrivateKey[];
  /** Upper-case hex key ids of every (sub)key held. */
  keyIds: readonly string[];
  /** For messages: `<fingerprint> (<user id>)` of each key. */
  describe(): string;
}

/** A private-key file and the passphrase that unlocks its keys ('' for unprotected keys). */
export interface PrivateKeySource {
  file: string;
  passphrase: string;
  /** The variable that named the passphrase, for messages (GPG_PASSPHRASE, or a `.passphrase` file). */
  passphraseFrom: string;
}

/**
 * Reads and unlocks every private key of `sources` (GPG_PRIVATE_KEY_FILE: one file, possibly
 * holding several keys, or every key file of a directory). A file without a private key, a key
 * that cannot be unlocked, or no key at all fail with OpenPgpKeyError naming the file.
 */
export async function loadDecryptionKeys(sources: readonly PrivateKeySource[], where: string): Promise<DecryptionKeys> {
  const keys: PrivateKey[] = [];
  for (const source of sources) keys.push(...(await loadPrivateKeys(source)));
  if (keys.length === 0) throw new OpenPgpKeyError(`GPG_PRIVATE_KEY_FILE (${where}) holds no usable private key`);
  return decryptionKeys(keys);
}

function decryptionKeys(keys: readonly PrivateKey[]): DecryptionKeys {
  const keyIds = [...new Set(keys.flatMap((key) => key.getKeyIDs().map((id) => id.toHex().toUpperCase())))];
  return { keys, keyIds, describe: () => keys.map(describeKey).join('; ') };
}

/**
 * The key ids of the private keys in `files`, without unlocking them (no passphrase needed):
 * what `erp4-backup keys` compares the manifests with.
 */
export async function privateKeyIds(files: readonly string[]): Promise<{ keyIds: string[]; keys: string[] }> {
  const keys: Key[] = [];
  for (const file of files) keys.push(...(await readKeyFile(file, 'GPG_PRIVATE_KEY_FILE')).filter((key) => key.isPrivate()));
  return {
    keyIds: [...new Set(keys.flatMap((key) => key.getKeyIDs().map((id) => id.toHex().toUpperCase())))],
    keys: keys.map(describeKey),
  };
}

async function loadPrivateKeys({ file, passphrase, passphraseFrom }: PrivateKeySource): Promise<PrivateKey[]> {
  const privateKeys = (await readKeyFile(file, 'GPG_PRIVATE_KEY_FILE')).filter((key): key is PrivateKey => key.isPrivate());
  if (privateKeys.length === 0) {
    throw new OpenPgpKeyError(`GPG_PRIVATE_KEY_FILE (${file}) holds only public keys, no private key`);
  }
  const unlocked: PrivateKey[] = [];
  for (const privateKey of privateKeys) {
    if (privateKey.isDecrypted()) {
      unlocked.push(privateKey);
      continue;
    }
    if (passphrase === '') {
      throw new OpenPgpKeyError(
        `${passphraseFrom} is empty, but the private key in GPG_PRIVATE_KEY_FILE (${file}), ${describeKey(privateKey)}, is passphrase-protected`,
      );
    }
    try {
      unlocked.push(await decryptKey({ privateKey, passphrase }));
    } catch (error) {
      const reason = errorMessage(error);
      // openpgp's messages never contain the passphrase itself.
      const detail = /incorrect key passphrase/i.test(reason)
        ? `${passphraseFrom} is wrong for`
        : `${passphraseFrom} could not unlock (${reason})`;
      throw new OpenPgpKeyError(`${detail} the private key in GPG_PRIVATE_KEY_FILE (${file}), ${describeKey(privateKey)}`);
    }
  }
  return unlocked;
}

/**
 * The key ids a binary OpenPGP message is encrypted to (its PKESK packets), read from the start
 * of `input` only; the stream is destroyed afterwards. `0000000000000000` is an anonymous
 * recipient (gpg --throw-keyids).
 */
export async function messageRecipientKeyIds(input: Readable): Promise<string[]> {
  try {
    const message = await readMessage({ binaryMessage: toWebStream(input) });
    return message.getEncryptionKeyIDs().map((id) => id.toHex().toUpperCase());
  } catch (error) {
    throw new Error(`the backup artifact is not a binary OpenPGP message: ${errorMessage(error)}`);
  } finally {
    input.destroy();
  }
}

const ANONYMOUS_KEY_ID = '0000000000000000';

/**
 * The recipient key ids of `recipientKeyIds` that `available` cannot decrypt: empty when one of
 * them is held (one fitting key suffices) or the message names an anonymous recipient.
 */
export function missingRecipientKeyIds(recipientKeyIds: readonly string[], available: readonly string[]): string[] {
  const ids = recipientKeyIds.map((id) => id.toUpperCase());
  if (ids.includes(ANONYMOUS_KEY_ID) || ids.some((id) => available.includes(id))) return [];
  return ids;
}

/**
 * Decrypts a binary OpenPGP message from `input` with whichever of `privateKeys` it is
 * encrypted to, streaming. Callers MUST use the plaintext only once the ciphertext's sha256
 * matched the manifest (see the top of this file): the plaintext is released before the MDC is
 * checked at the end of the stream, and a modified message only fails there, as an error of
 * the returned stream. A rejection destroys `input`.
 */
export async function decryptStream(input: Readable, privateKeys: DecryptionKeys): Promise<Readable> {
  return destroyInputOnFailure(input, async () => {
    let message;
    try {
      message = await readMessage({ binaryMessage: toWebStream(input) });
    } catch (error) {
      throw new Error(`the backup artifact is not a binary OpenPGP message: ${errorMessage(error)}`);
    }
    const recipientIds = message.getEncryptionKeyIDs();
    const missing = missingRecipientKeyIds(recipientIds.map((id) => id.toHex().toUpperCase()), privateKeys.keyIds);
    if (recipientIds.length === 0 || missing.length > 0) {
      const intendedFor = recipientIds.length === 0 ? 'no public key' : `key id ${hexIds(recipientIds)}`;
      throw new MissingRecipientKeyError(
        `the backup is encrypted for ${intendedFor}; GPG_PRIVATE_KEY_FILE holds ${privateKeys.describe()} with key ids ${privateKeys.keyIds.join(', ')}`,
        missing,
      );
    }
    // Only the fitting keys: openpgp would otherwise try every key on an anonymous recipient too.
    const fitting = privateKeys.keys.filter((key) => key.getKeyIDs().some((own) => recipientIds.some((id) => own.equals(id, true))));
    const { data }: { data: unknown } = await decrypt({
      message,
      decryptionKeys: fitting.length > 0 ? fitting : [...privateKeys.keys],
      format: 'binary',
      config: DECRYPT_CONFIG,
    });
    return fromWebStream(data);
  });
}

/** A caller handing over a file or a child's stdout must not be left holding it open on failure. */
async function destroyInputOnFailure<T>(input: Readable, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    input.destroy();
    throw error;
  }
}

function toWebStream(input: Readable): NodeReadableStream<Uint8Array> {
  return Readable.toWeb(input) as NodeReadableStream<Uint8Array>;
}

/** openpgp is typed against its own web-stream types; at run time it returns a WHATWG ReadableStream. */
function fromWebStream(stream: unknown): Readable {
  if (!(stream instanceof ReadableStream)) {
    throw new TypeError('openpgp returned a non-stream result for a stream input');
  }
  return Readable.fromWeb(stream as NodeReadableStream<Uint8Array>);
}

async function readKeyFile(path: string, variable: string): Promise<Key[]> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    throw new OpenPgpKeyError(`${variable} (${path}) cannot be read: ${errorMessage(error)}`);
  }
  const armoured = bytes.subarray(0, 64).toString('latin1').trimStart().startsWith('-----BEGIN PGP');
  try {
    return armoured ? await readKeys({ armoredKeys: bytes.toString('utf8') }) : await readKeys({ binaryKeys: bytes });
  } catch (error) {
    throw new OpenPgpKeyError(`${variable} (${path}) does not hold an OpenPGP key: ${errorMessage(error)}`);
  }
}

function matchesRecipient(key: Key, recipient: string): boolean {
  const hex = recipient.replace(/\s+/g, '').replace(/^0x/i, '').toLowerCase();
  if (/^([0-9a-f]{8}|[0-9a-f]{16}|[0-9a-f]{40})$/.test(hex)) {
    const ids = key.getKeys().flatMap((k) => [k.getFingerprint().toLowerCase(), k.getKeyID().toHex().toLowerCase()]);
    if (ids.some((id) => id === hex || (hex.length === 8 && id.endsWith(hex)))) return true;
  }
  const needle = recipient.trim().toLowerCase();
  return key.getUserIDs().some((userId) => userId.toLowerCase().includes(needle));
}

async function assertCanEncrypt(key: Key, now: Date, which: string): Promise<void> {
  try {
    await key.getEncryptionKey(undefined, now);
  } catch (error) {
    throw new OpenPgpKeyError(`${which}, ${describeKey(key)}, cannot encrypt: ${await whyCannotEncrypt(key, now, error)}`);
  }
}

/** Turns openpgp's generic "could not find valid encryption key packet" into the operator's fix. */
async function whyCannotEncrypt(key: Key, now: Date, error: unknown): Promise<string> {
  if (await key.isRevoked(undefined, undefined, now)) return 'it is revoked';
  const keyExpiry = await key.getExpirationTime();
  if (keyExpiry instanceof Date && keyExpiry <= now) return `it expired on ${keyExpiry.toISOString()}`;
  const encryptionSubkeys = key.getSubkeys().filter(canEncryptByFlags);
  const primaryCanEncrypt = key.users.some((user) => user.selfCertifications.some((sig) => hasEncryptionFlag(sig.keyFlags)));
  if (encryptionSubkeys.length === 0 && !primaryCanEncrypt) return 'it has no encryption-capable subkey';
  const subkeyExpiries = await Promise.all(encryptionSubkeys.map((subkey) => subkey.getExpirationTime()));
  if (
    !primaryCanEncrypt &&
    subkeyExpiries.length > 0 &&
    subkeyExpiries.every((expiry) => expiry instanceof Date && expiry <= now)
  ) {
    const dates = subkeyExpiries.map((expiry) => (expiry as Date).toISOString()).join(', ');
    return `its encryption subkey expired on ${dates}`;
  }
  return errorMessage(error);
}

function canEncryptByFlags(subkey: Subkey): boolean {
  return subkey.bindingSignatures.some((sig) => hasEncryptionFlag(sig.keyFlags));
}

function hasEncryptionFlag(keyFlags: Uint8Array | null | undefined): boolean {
  return ((keyFlags?.[0] ?? 0) & ENCRYPTION_FLAGS) !== 0;
}

function describeKey(key: Key): string {
  const userIds = key.getUserIDs();
  return `${key.getFingerprint().toUpperCase()}${userIds.length > 0 ? ` (${userIds.join(', ')})` : ''}`;
}

function hexIds(ids: readonly KeyID[]): string {
  return ids.map((id) => id.toHex().toUpperCase()).join(', ');
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
