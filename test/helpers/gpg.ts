import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { Services } from './services.js';

/**
 * Test keyrings made by the real GnuPG 2.2 (v4 keys, as production keys are), so the
 * OpenPGP code is tested against what operators will actually hand it.
 */
export type TestKeyring = Services['gnupg'];

/** A key generated into a test keyring, exported to its own files. */
export interface TestKey {
  uid: string;
  fingerprint: string;
  publicKeyPath: string;
  privateKeyPath: string;
}

export const TEST_RECIPIENT = 'backup@example.test';
const TEST_UID = `Backup Test <${TEST_RECIPIENT}>`;
const DAY_SECONDS = 86_400;

export interface GpgResult {
  stdout: Buffer;
  stderr: string;
}

/**
 * Runs gpg on `home` in batch mode and fails with gpg's stderr on a non-zero exit.
 * The passphrase, when needed, comes from `passphraseFile(keyring)`, never from argv.
 */
export async function runGpg(
  home: string,
  args: readonly string[],
  input?: Buffer | Readable,
): Promise<GpgResult> {
  const child = spawn('gpg', ['--homedir', home, '--batch', '--no-tty', ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
  child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
  // gpg may exit before reading all of stdin (e.g. on a bad key); the exit code reports that.
  child.stdin.on('error', () => undefined);
  if (input === undefined) child.stdin.end();
  else if (Buffer.isBuffer(input)) child.stdin.end(input);
  else input.pipe(child.stdin);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  const result = { stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr).toString('utf8') };
  if (code !== 0) {
    throw new Error(`gpg ${args.join(' ')} exited with ${code}:\n${result.stderr}`);
  }
  return result;
}

/** Writes (idempotently) the keyring's passphrase to a 0600 file in its home and returns the path. */
export async function passphraseFile(keyring: Pick<TestKeyring, 'home' | 'passphrase'>): Promise<string> {
  const path = join(keyring.home, 'test-passphrase');
  await writeFile(path, keyring.passphrase, { mode: 0o600 });
  return path;
}

/**
 * Creates a GNUPGHOME in `dir` holding one ed25519 (sign) + cv25519 (encrypt) v4 key for
 * `Backup Test <backup@example.test>`, protected by a random passphrase, and exports its
 * armoured public and secret keys next to it.
 */
export async function createTestKeyring(dir: string): Promise<TestKeyring> {
  const home = join(dir, 'gnupg');
  await mkdir(home, { recursive: true, mode: 0o700 });
  await chmod(home, 0o700); // mkdir's mode is masked by the umask; gpg warns on a group-readable home
  // The agent calibrates its passphrase hashing to ~100 ms per operation; test keys do not
  // need that strength, and every key generation and export pays for it.
  await writeFile(join(home, 'gpg-agent.conf'), 's2k-count 65536\n', { mode: 0o600 });
  const passphrase = randomBytes(18).toString('base64url');
  const keyring: TestKeyring = {
    home,
    recipient: TEST_RECIPIENT,
    publicKeyPath: '',
    privateKeyPath: '',
    passphrase,
  };
  // `future-default` is ed25519 + a cv25519 encryption subkey in GnuPG 2.2.
  const key = await generateKey(keyring, TEST_UID, ['future-default', 'default', 'never'], dir, 'backup');
  return { ...keyring, publicKeyPath: key.publicKeyPath, privateKeyPath: key.privateKeyPath };
}

/**
 * Adds to the keyring a ed25519/cv25519 key that was valid for one day, two days ago:
 * GnuPG refuses an expiry in the past, so the key is made with a faked clock.
 */
export async function createExpiredKey(keyring: TestKeyring, dir: string): Promise<TestKey> {
  const twoDaysAgo = Math.floor(Date.now() / 1000) - 2 * DAY_SECONDS;
  return generateKey(
    keyring,
    'Expired Test <expired@example.test>',
    ['future-default', 'default', '1d'],
    dir,
    'expired',
    ['--faked-system-time', `${twoDaysAgo}!`],
  );
}

/** Adds to the keyring an ed25519 key that can only sign and certify: no encryption subkey. */
export async function createSignOnlyKey(keyring: TestKeyring, dir: string): Promise<TestKey> {
  return generateKey(keyring, 'Sign Only <sign-only@example.test>', ['ed25519', 'sign', 'never'], dir, 'sign-only');
}

/** Stops the gpg-agent GnuPG started for `home` (it would otherwise outlive the test run). */
export async function stopGpgAgent(home: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const child = spawn('gpgconf', ['--homedir', home, '--kill', 'gpg-agent'], { stdio: 'ignore' });
    child.once('error', reject);
    child.once('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`gpgconf --kill gpg-agent exited with ${code}`)),
    );
  });
}

async function generateKey(
  keyring: TestKeyring,
  uid: string,
  algoUsageExpire: readonly string[],
  exportDir: string,
  fileStem: string,
  extraArgs: readonly string[] = [],
): Promise<TestKey> {
  const loopback = ['--pinentry-mode', 'loopback', '--passphrase-file', await passphraseFile(keyring)];
  const { stdout } = await runGpg(keyring.home, [
    ...loopback,
    ...extraArgs,
    '--status-fd',
    '1',
    '--quick-gen-key',
    uid,
    ...algoUsageExpire,
  ]);
  const fingerprint = /^\[GNUPG:\] KEY_CREATED [BP] ([0-9A-F]{40})$/m.exec(stdout.toString('utf8'))?.[1];
  if (fingerprint === undefined) throw new Error(`gpg --quick-gen-key ${uid} reported no KEY_CREATED`);
  const publicKeyPath = join(exportDir, `${fileStem}.pub.asc`);
  const privateKeyPath = join(exportDir, `${fileStem}.sec.asc`);
  const publicKey = await runGpg(keyring.home, ['--armor', '--export', fingerprint]);
  const privateKey = await runGpg(keyring.home, [...loopback, '--armor', '--export-secret-keys', fingerprint]);
  await writeFile(publicKeyPath, publicKey.stdout);
  await writeFile(privateKeyPath, privateKey.stdout, { mode: 0o600 });
  return { uid, fingerprint, publicKeyPath, privateKeyPath };
}
