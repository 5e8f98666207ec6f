import { randomBytes } from 'node:crypto';
import { mkdtemp, open, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256OfFile, type Digest } from '../../src/storage/hash.js';
import { IntegrityError } from '../../src/storage/repository.js';
import { HostKeyMismatchError, hostKeyFingerprint, parseHostKey, SftpRepository, type SftpRepositoryOptions } from '../../src/storage/sftp.js';
import { services } from '../helpers/services.js';
import { corruptedSha256, repositoryContract, writeRandomFile } from './contract.js';

const sftp = services().sftp;
/** This run's directory under the server's SFTP root (the server runs on this machine, so the tests can look at it directly). */
const runDir = `storage-test-${Date.now()}-${randomBytes(4).toString('hex')}`;
let repositories = 0;

function makeOptions(overrides: Partial<SftpRepositoryOptions> = {}): SftpRepositoryOptions {
  return {
    host: sftp.host,
    port: sftp.port,
    username: sftp.user,
    privateKey: sftp.privateKeyPath,
    hostKey: sftp.hostPublicKey,
    root: `${sftp.rootDir}/${runDir}/repository-${++repositories}`,
    ...overrides,
  };
}

/** The configured host key with one bit of the key material flipped: a well-formed key of another host. */
function otherHostKey(): string {
  const [type, base64] = sftp.hostPublicKey.split(' ');
  const blob = Buffer.from(base64!, 'base64');
  blob.writeUInt8(blob.readUInt8(blob.length - 1) ^ 0x01, blob.length - 1);
  return `${type} ${blob.toString('base64')}`;
}

repositoryContract('sftp', async () => new SftpRepository(makeOptions()));

describe('parseHostKey', () => {
  const [type, base64] = sftp.hostPublicKey.split(' ');

  it('gives the fingerprint ssh-keygen prints, from a public key line, a known_hosts line or a fingerprint', () => {
    expect(parseHostKey(sftp.hostPublicKey)).toBe(sftp.hostKeyFingerprint);
    expect(parseHostKey(`${sftp.hostPublicKey} root@backup-host`)).toBe(sftp.hostKeyFingerprint);
    expect(parseHostKey(`[backup.example.test]:2222 ${type} ${base64}`)).toBe(sftp.hostKeyFingerprint);
    expect(parseHostKey(`backup.example.test,10.0.0.5 ${type} ${base64} comment`)).toBe(sftp.hostKeyFingerprint);
    expect(parseHostKey(`  ${sftp.hostKeyFingerprint}\n`)).toBe(sftp.hostKeyFingerprint);
    expect(hostKeyFingerprint(Buffer.from(base64!, 'base64'))).toBe(sftp.hostKeyFingerprint);
  });

  it('rejects anything else, naming hostKey', () => {
    for (const bad of ['', 'AAAAC3NzaC1lZDI1NTE5', 'SHA256:short', 'MD5:aa:bb', `ssh-ed25519 not*base64`, `ssh-rsa ${base64}`]) {
      expect(() => parseHostKey(bad), bad).toThrow(/hostKey/);
    }
    expect(() => parseHostKey(`@cert-authority *.example.test ${type} ${base64}`)).toThrow(/hostKey: known_hosts markers/);
  });
});

describe('SftpRepository', () => {
  let workDir: string;
  let source: { path: string; digest: Digest };

  beforeAll(async () => {
    workDir = await mkdtemp(join(tmpdir(), 'erp4-sftp-repository-'));
    source = { path: join(workDir, 'source.dump'), digest: await writeRandomFile(join(workDir, 'source.dump'), 300_000) };
  });

  afterAll(async () => {
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it('refuses a server presenting another host key, naming REMOTE_HOST, the host and both fingerprints', async () => {
    const options = makeOptions({ hostKey: otherHostKey() });
    const repository = new SftpRepository(options);
    const expected = parseHostKey(options.hostKey);
    const error = await repository.putBytes('refused/a.json', Buffer.from('{}')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HostKeyMismatchError);
    const message = (error as Error).message;
    expect(message).toContain('REMOTE_HOST');
    expect(message).toContain(`${sftp.host}:${sftp.port}`);
    expect(message).toContain(`presented host key ${sftp.hostKeyFingerprint}`);
    expect(message).toContain(expected);
    expect(expected).not.toBe(sftp.hostKeyFingerprint);
    // Every call is refused, not only the first.
    await expect(repository.list('')).rejects.toBeInstanceOf(HostKeyMismatchError);
    await repository.close();
    await expect(readdir(options.root)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('names the configured host label in the refusal', async () => {
    const repository = new SftpRepository(makeOptions({ hostKey: otherHostKey(), hostLabel: 'BACKUP_NAS_HOST' }));
    await expect(repository.stat('a')).rejects.toThrow(/^BACKUP_NAS_HOST 127\.0\.0\.1:\d+ presented host key SHA256:/);
    await repository.close();
  });

  it('accepts the host by fingerprint or known_hosts line, and a private key given as bytes', async () => {
    for (const hostKey of [sftp.hostKeyFingerprint, `[${sftp.host}]:${sftp.port} ${sftp.hostPublicKey}`]) {
      const repository = new SftpRepository(makeOptions({ hostKey, privateKey: await readFile(sftp.privateKeyPath) }));
      await repository.putBytes('accepted/a.json', Buffer.from('{"ok":true}'));
      expect((await repository.getBytes('accepted/a.json')).toString()).toBe('{"ok":true}');
      await repository.close();
    }
  });

  it('rejects bad options, naming them', () => {
    expect(() => new SftpRepository(makeOptions({ root: 'relative/dir' }))).toThrow(/root must be an absolute remote directory/);
    expect(() => new SftpRepository(makeOptions({ hostKey: 'nonsense' }))).toThrow(/hostKey/);
    expect(() => new SftpRepository(makeOptions({ host: '' }))).toThrow(/REMOTE_HOST must not be empty/);
  });

  it('replaces a stored file with a corrupt byte instead of trusting it', async () => {
    const options = makeOptions();
    const repository = new SftpRepository(options);
    await repository.putFile('corrupt/db/x.dump', source.path, { expected: source.digest });
    const path = join(options.root, 'corrupt', 'db', 'x.dump');
    const handle = await open(path, 'r+');
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, 4321);
    await handle.write(Buffer.from([byte[0]! ^ 0xff]), 0, 1, 4321);
    await handle.close();
    expect(await sha256OfFile(path)).not.toEqual(source.digest);

    await repository.putFile('corrupt/db/x.dump', source.path, { expected: source.digest });
    expect(await sha256OfFile(path)).toEqual(source.digest);
    await repository.close();
  });

  it('leaves no temporary file on the server after a failed or aborted put, and writes owner-only files', async () => {
    const options = makeOptions();
    const repository = new SftpRepository(options);
    const wrong = { size: source.digest.size, sha256: corruptedSha256(source.digest.sha256) };
    await expect(repository.putFile('failed/db/x.dump', source.path, { expected: wrong })).rejects.toBeInstanceOf(IntegrityError);
    const controller = new AbortController();
    await expect(
      repository.putFile('failed/db/y.dump', source.path, { expected: source.digest, signal: controller.signal, onProgress: () => controller.abort() }),
    ).rejects.toMatchObject({ name: 'AbortError' });
    await repository.putFile('failed/db/z.dump', source.path, { expected: source.digest });
    expect(await readdir(join(options.root, 'failed', 'db'))).toEqual(['z.dump']);
    expect((await stat(join(options.root, 'failed', 'db', 'z.dump'))).mode & 0o777).toBe(0o600);
    await repository.close();
  });

  it('creates missing directories, also for concurrent puts into the same new directory', async () => {
    const repository = new SftpRepository(makeOptions());
    const keys = [1, 2, 3, 4, 5].map((n) => `concurrent/deep/dir/${n}.json`);
    await Promise.all(keys.map((key) => repository.putBytes(key, Buffer.from(key))));
    expect((await repository.list('concurrent/')).map((info) => info.key).sort()).toEqual(keys);
    await repository.close();
  });

  it('reconnects on the next call after the connection was lost', async () => {
    const repository = new SftpRepository(makeOptions());
    await repository.putBytes('reconnect/a.json', Buffer.from('{"a":1}'));
    // Drop the SSH connection under the repository, as a network failure would.
    const client = await (repository as unknown as { connection: Promise<{ end(): Promise<boolean> }> }).connection;
    await client.end();
    expect((await repository.getBytes('reconnect/a.json')).toString()).toBe('{"a":1}');
    await repository.close();
  });
});
