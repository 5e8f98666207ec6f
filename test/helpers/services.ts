import { inject } from 'vitest';

/**
 * The real services the global setup (test/helpers/global-setup.ts) starts once per run.
 * Test files read them with `services()`; each test isolates itself with its own database,
 * key prefix, directory or task queue instead of starting services of its own.
 */
export interface Services {
  /** Scratch directory of this run; every service keeps its log under `${workDir}/logs`. */
  workDir: string;
  postgres: {
    host: string; // 127.0.0.1
    port: number;
    /** Superuser role for tests (password authentication over TCP). */
    user: string;
    password: string;
    /** The seeded ERP-like sample database (customers, invoices, invoice_lines, batch_jobs, ...). */
    sampleDb: string;
    /** Directory holding pg_dump, pg_restore, pg_dumpall, psql of the server's major version. */
    binDir: string;
    serverVersion: string;
  };
  /** A directory of sample PDF files (ASSET_DIR of the sample ERP). */
  assetDir: string;
  temporal: {
    address: string; // 127.0.0.1:<port>
    namespace: string; // 'default'
    cliPath: string;
    uiPort: number;
  };
  s3: {
    endpoint: string; // http://127.0.0.1:<port>
    region: string;
    accessKeyId: string;
    secretAccessKey: string;
    bucket: string;
  };
  sftp: {
    host: string; // 127.0.0.1
    port: number;
    user: string;
    /** Private key (OpenSSH format) authorized for `user`. */
    privateKeyPath: string;
    /** The server's host public key, one OpenSSH line: "ssh-ed25519 AAAA...". */
    hostPublicKey: string;
    /** "SHA256:..." fingerprint of the host key, as `ssh-keygen -lf` prints it. */
    hostKeyFingerprint: string;
    /** A directory on the server the user may write to (absolute path). */
    rootDir: string;
  };
  gnupg: {
    /** A GNUPGHOME holding a test key pair (RSA or Curve25519 v4, encryption subkey). */
    home: string;
    recipient: string; // e-mail / uid of the test key
    publicKeyPath: string; // ASCII-armoured public key
    privateKeyPath: string; // ASCII-armoured private key, protected by `passphrase`
    passphrase: string;
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    services: Services;
  }
}

export function services(): Services {
  return inject('services');
}
