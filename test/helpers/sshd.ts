import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { freePort, runCommand, spawnService, waitUntilReady, type ServiceProcess } from '../../src/dev/processes.js';

export interface SshServer {
  host: string;
  port: number;
  user: string;
  /** Private key (OpenSSH format, no passphrase) authorized for `user`. */
  privateKeyPath: string;
  /** "ssh-ed25519 AAAA..." */
  hostPublicKey: string;
  /** "SHA256:..." */
  hostKeyFingerprint: string;
  /** A directory the user may write to. */
  rootDir: string;
  /** What the server announces, e.g. "OpenSSH_9.2p1 Debian-2+deb12u3". */
  version: string;
  process: ServiceProcess;
  stop(): Promise<void>;
}

export interface StartSshdOptions {
  sshdPath: string;
  /** A new directory for keys, config and the SFTP root. */
  dir: string;
  logPath: string;
  port?: number;
}

async function generateEd25519Key(path: string, comment: string): Promise<void> {
  await runCommand('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', path]);
}

/** Resolves with the identification line the server sends first ("SSH-2.0-OpenSSH_9.2p1 ..."). */
function readBanner(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host, port });
    let received = '';
    socket.setEncoding('latin1');
    socket.setTimeout(2_000, () => socket.destroy(new Error('no SSH banner within 2 s')));
    socket.on('data', (chunk: string) => {
      received += chunk;
      const end = received.indexOf('\n');
      if (end >= 0) {
        socket.destroy();
        resolve(received.slice(0, end).trim());
      }
    });
    socket.once('error', reject);
    socket.once('close', () => reject(new Error('connection closed before the SSH banner')));
  });
}

/**
 * Starts a throwaway `sshd` on 127.0.0.1 with its own host key, accepting one generated
 * client key for the current user, with the internal SFTP server.
 */
export async function startSshd(options: StartSshdOptions): Promise<SshServer> {
  const host = '127.0.0.1';
  const port = options.port ?? (await freePort());
  const user = userInfo().username;
  const hostKeyPath = join(options.dir, 'ssh_host_ed25519_key');
  const privateKeyPath = join(options.dir, 'client_ed25519_key');
  const authorizedKeysPath = join(options.dir, 'authorized_keys');
  const configPath = join(options.dir, 'sshd_config');
  const rootDir = join(options.dir, 'sftp-root');
  await mkdir(rootDir, { recursive: true });
  // sshd insists on its privilege separation directory even when it never uses it.
  await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
  await Promise.all([
    generateEd25519Key(hostKeyPath, 'erp4-backup test sshd host key'),
    generateEd25519Key(privateKeyPath, 'erp4-backup test client'),
  ]);
  await writeFile(authorizedKeysPath, await readFile(`${privateKeyPath}.pub`), { mode: 0o600 });
  await writeFile(
    configPath,
    [
      `ListenAddress ${host}:${port}`,
      `HostKey ${hostKeyPath}`,
      `PidFile ${join(options.dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${authorizedKeysPath}`,
      `AllowUsers ${user}`,
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      // The key files live in a temp dir whose modes sshd's strict checks would reject.
      'StrictModes no',
      'PermitRootLogin prohibit-password',
      'Subsystem sftp internal-sftp',
      'LogLevel VERBOSE',
      '',
    ].join('\n'),
  );
  const hostPublicKey = (await readFile(`${hostKeyPath}.pub`, 'utf8')).trim().split(/\s+/).slice(0, 2).join(' ');
  const fingerprintLine = (await runCommand('ssh-keygen', ['-l', '-f', `${hostKeyPath}.pub`])).stdout;
  const hostKeyFingerprint = fingerprintLine.trim().split(/\s+/)[1] ?? '';
  if (!hostKeyFingerprint.startsWith('SHA256:')) {
    throw new Error(`unexpected ssh-keygen -l output: ${fingerprintLine}`);
  }
  // -D: stay in the foreground; -e: log to stderr (our log file).
  const server = await spawnService({
    name: 'sshd',
    command: options.sshdPath,
    args: ['-D', '-e', '-f', configPath],
    logPath: options.logPath,
  });
  let banner: string;
  try {
    banner = await waitUntilReady(server, () => readBanner(host, port), { timeoutMs: 30_000 });
  } catch (error) {
    await server.stop();
    throw error;
  }
  return {
    host, port, user, privateKeyPath, hostPublicKey, hostKeyFingerprint, rootDir,
    version: banner.replace(/^SSH-2\.0-/, ''),
    process: server,
    stop: () => server.stop(),
  };
}
