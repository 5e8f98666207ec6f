import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface KeyPair {
  certFile: string;
  keyFile: string;
}

// P-256 keys: quick to make, and both OpenSSL (libpq, the server) and node accept them.
const NEW_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** A throwaway CA made with openssl: its certificate and key, mode 0600. */
export async function makeCa(dir: string, name: string): Promise<KeyPair> {
  const pair = { certFile: join(dir, `${name}.crt`), keyFile: join(dir, `${name}.key`) };
  await run('openssl', [
    'req', '-x509', ...NEW_KEY, '-keyout', pair.keyFile, '-out', pair.certFile, '-days', '2', '-subj', `/CN=${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  return pair;
}

/**
 * A certificate for `commonName`, signed by `ca` (or self-signed without one). `dnsNames` become
 * its subjectAltName; a client certificate's common name is the role it logs in as.
 */
export async function issueCertificate(dir: string, name: string, options: { ca?: KeyPair; commonName: string; dnsNames?: string[] }): Promise<KeyPair> {
  const pair = { certFile: join(dir, `${name}.crt`), keyFile: join(dir, `${name}.key`) };
  const san = options.dnsNames?.length ? `subjectAltName=${options.dnsNames.map((n) => `DNS:${n}`).join(',')}` : undefined;
  if (!options.ca) {
    await run('openssl', ['req', '-x509', ...NEW_KEY, '-keyout', pair.keyFile, '-out', pair.certFile, '-days', '2', '-subj', `/CN=${options.commonName}`, ...(san ? ['-addext', san] : [])]);
    return pair;
  }
  const csr = join(dir, `${name}.csr`);
  const extensions = join(dir, `${name}.ext`);
  await writeFile(extensions, `${san ?? ''}\n`);
  await run('openssl', ['req', '-new', ...NEW_KEY, '-keyout', pair.keyFile, '-out', csr, '-subj', `/CN=${options.commonName}`]);
  await run('openssl', ['x509', '-req', '-in', csr, '-CA', options.ca.certFile, '-CAkey', options.ca.keyFile, '-CAcreateserial', '-out', pair.certFile, '-days', '2', '-extfile', extensions]);
  return pair;
}
