import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/**
 * A throwaway certificate authority made with `openssl` (EC P-256, X.509 v3 everywhere: the
 * worker's Rust TLS refuses v1 certificates), for TLS tests of the Temporal connection.
 */
export interface TestCa {
  /** PEM certificate of the CA (TEMPORAL_TLS_SERVER_CA_CERT_PATH). */
  certPath: string;
  /** A server certificate for `names` (DNS names or IP addresses), or a client certificate. */
  issue(name: string, usage: { serverNames: string[] } | { client: true }): { certPath: string; keyPath: string };
}

const openssl = (args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });

export function createTestCa(dir: string, name: string): TestCa {
  fs.mkdirSync(dir, { recursive: true });
  const caKey = path.join(dir, `${name}.key`);
  const caCert = path.join(dir, `${name}.pem`);
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', caKey, '-out', caCert, '-days', '2', '-subj', `/CN=${name}`]);
  return {
    certPath: caCert,
    issue(leaf, usage) {
      const keyPath = path.join(dir, `${leaf}.key`);
      const certPath = path.join(dir, `${leaf}.pem`);
      const csr = path.join(dir, `${leaf}.csr`);
      const ext = path.join(dir, `${leaf}.ext`);
      const altNames = 'serverNames' in usage ? usage.serverNames.map((n) => (/^[\d.]+$/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(',') : '';
      fs.writeFileSync(
        ext,
        'serverNames' in usage
          ? `basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=${altNames}\n`
          : 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n',
      );
      openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyPath, '-out', csr, '-subj', `/CN=${leaf}`]);
      openssl(['x509', '-req', '-in', csr, '-CA', caCert, '-CAkey', caKey, '-CAcreateserial', '-out', certPath, '-days', '2', '-extfile', ext]);
      return { certPath, keyPath };
    },
  };
}
