import net from 'node:net';
import tls from 'node:tls';
import { Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import type { TemporalConnection } from './connection.js';

/**
 * Opening the connections of src/temporal/connection.ts: the worker's NativeConnection and the
 * commands' Connection. When one fails, a TLS handshake of our own (node `tls`, the same
 * certificates) finds out why and names the setting to fix: the SDK says only "Failed to
 * connect before the deadline" (after 10 s) or a Rust transport error.
 */
export class TemporalConnectionError extends Error {
  constructor(
    message: string,
    /** The variable to look at, e.g. TEMPORAL_TLS_SERVER_CA_CERT_PATH. */
    readonly setting: string,
  ) {
    super(message);
    this.name = 'TemporalConnectionError';
  }
}

interface Verdict {
  /** The TLS handshake itself shows the problem: no need to wait for the SDK's deadline. */
  decisive: boolean;
  error?: TemporalConnectionError;
}

const SERVER_CA_ERRORS = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_GET_ISSUER_CERT',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
]);
const CLIENT_CERT_MISSING = new Set(['ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED', 'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE']);
const CLIENT_CERT_REFUSED = new Set([
  'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA',
  'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED',
  'ERR_SSL_TLSV1_ALERT_DECRYPT_ERROR',
]);
const NOT_TLS = new Set(['ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_SSL_PACKET_LENGTH_TOO_LONG', 'ERR_SSL_HTTP_REQUEST']);
const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

/** HTTP/2's client preface and an empty SETTINGS frame: a server that accepted us answers with its SETTINGS. */
const H2_PREFACE = Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])]);

function hostAndPort(address: string): { host: string; port: number } {
  const colon = address.lastIndexOf(':');
  return { host: address.slice(0, colon).replace(/^\[(.*)\]$/, '$1'), port: Number(address.slice(colon + 1)) };
}

/** The handshake the SDK would do, with node `tls`; the verdict names the setting behind a failure. */
function probeTls(settings: TemporalConnection, timeoutMs: number): Promise<Verdict> {
  const options = settings.sdkOptions();
  const tlsOptions = typeof options.tls === 'object' ? options.tls : {};
  const { host, port } = hostAndPort(settings.address);
  const origins = settings.origins;
  const where = `Temporal at ${settings.address} (${origins.address})`;
  const serverName = tlsOptions.serverNameOverride ?? host;
  const fail = (setting: string, message: string): Verdict => ({ decisive: true, error: new TemporalConnectionError(`${where}: ${message}`, setting) });

  const explain = (error: NodeJS.ErrnoException, afterHandshake: boolean): Verdict => {
    const code = error.code ?? '';
    if (SERVER_CA_ERRORS.has(code)) {
      return origins.serverCa
        ? fail(origins.serverCa, `the server's certificate is not signed by the CA of ${origins.serverCa} (${error.message}); expected the CA that signed it`)
        : fail('TEMPORAL_TLS_SERVER_CA_CERT_PATH', `the server's certificate is not signed by a CA this system trusts (${error.message}); set TEMPORAL_TLS_SERVER_CA_CERT_PATH to the CA that signed it`);
    }
    if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
      const setting = origins.serverName ?? 'TEMPORAL_TLS_SERVER_NAME';
      return fail(setting, `the server's certificate is not for ${JSON.stringify(serverName)} (${error.message}); set ${setting} to a name the certificate carries`);
    }
    if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') {
      return fail(origins.serverCa ?? 'TEMPORAL_ADDRESS', `the server's certificate is not valid now (${error.message}); check the server's certificate and this machine's clock`);
    }
    if (CLIENT_CERT_MISSING.has(code) || (afterHandshake && !origins.clientCert && code === 'ECONNRESET')) {
      return origins.clientCert
        ? fail(origins.clientCert, `the server refused the handshake with the client certificate of ${origins.clientCert} (${code})`)
        : fail('TEMPORAL_TLS_CLIENT_CERT_PATH', `the server demands a client certificate (${code || error.message}); set TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH`);
    }
    if (CLIENT_CERT_REFUSED.has(code)) {
      return fail(origins.clientCert ?? 'TEMPORAL_TLS_CLIENT_CERT_PATH', `the server refused the client certificate of ${origins.clientCert ?? '(none)'} (${code}); expected a certificate signed by a CA the server trusts`);
    }
    if (NOT_TLS.has(code)) {
      return fail(origins.tls ?? 'TEMPORAL_TLS', `the server does not answer TLS (${code}); expected TEMPORAL_TLS=false (and no TEMPORAL_TLS_* or API key) for a plain server, or the address of its TLS port`);
    }
    if (UNREACHABLE.has(code)) return { decisive: false, error: new TemporalConnectionError(`${where}: cannot be reached (${code}); check TEMPORAL_ADDRESS`, 'TEMPORAL_ADDRESS') };
    return { decisive: false };
  };

  return new Promise((resolve) => {
    let settled = false;
    const done = (verdict: Verdict) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(verdict);
    };
    const timer = setTimeout(() => done({ decisive: false }), timeoutMs);
    let handshaken = false;
    const socket = tls.connect({
      host,
      port,
      servername: net.isIP(serverName) ? undefined : serverName,
      // checkServerIdentity compares with `servername`, else `host`: an IP address is checked against IP SANs.
      checkServerIdentity: (_name, certificate) => tls.checkServerIdentity(serverName, certificate),
      ca: tlsOptions.serverRootCACertificate ? Buffer.from(tlsOptions.serverRootCACertificate) : undefined,
      cert: tlsOptions.clientCertPair ? Buffer.from(tlsOptions.clientCertPair.crt) : undefined,
      key: tlsOptions.clientCertPair ? Buffer.from(tlsOptions.clientCertPair.key) : undefined,
      ALPNProtocols: ['h2'],
    });
    socket.once('secureConnect', () => {
      handshaken = true;
      // TLS 1.3 servers refuse a missing client certificate only after the handshake: talk HTTP/2 until they answer.
      socket.write(H2_PREFACE);
    });
    socket.once('data', () => done({ decisive: false }));
    socket.once('error', (error: NodeJS.ErrnoException) => done(explain(error, handshaken)));
    socket.once('close', () => done(handshaken ? explain(Object.assign(new Error('connection closed'), { code: 'ECONNRESET' }), true) : { decisive: false }));
  });
}

/** Without TLS the SDK cannot tell a TLS-only server from a dead one: a TLS hello can. */
function probePlain(settings: TemporalConnection, timeoutMs: number): Promise<Verdict> {
  const { host, port } = hostAndPort(settings.address);
  return new Promise((resolve) => {
    const socket = tls.connect({ host, port, rejectUnauthorized: false, ALPNProtocols: ['h2'], servername: net.isIP(host) ? undefined : host });
    const done = (verdict: Verdict) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(verdict);
    };
    const timer = setTimeout(() => done({ decisive: false }), timeoutMs);
    socket.once('secureConnect', () =>
      done({
        decisive: true,
        error: new TemporalConnectionError(
          `Temporal at ${settings.address} speaks TLS, but TLS is off${settings.origins.tls ? ` (${settings.origins.tls})` : ''}; set TEMPORAL_TLS=true and, for a private CA, TEMPORAL_TLS_SERVER_CA_CERT_PATH`,
          settings.origins.tls ?? 'TEMPORAL_TLS',
        ),
      }),
    );
    socket.once('error', (error: NodeJS.ErrnoException) =>
      done(
        UNREACHABLE.has(error.code ?? '')
          ? { decisive: true, error: new TemporalConnectionError(`Temporal at ${settings.address} (${settings.origins.address}) cannot be reached (${error.code}); check TEMPORAL_ADDRESS`, 'TEMPORAL_ADDRESS') }
          : { decisive: false },
      ),
    );
  });
}

const PROBE_TIMEOUT_MS = 5_000;

function probe(settings: TemporalConnection): Promise<Verdict> {
  return settings.tls === false ? probePlain(settings, PROBE_TIMEOUT_MS) : probeTls(settings, PROBE_TIMEOUT_MS);
}

/** A refused API key: the server answers, with UNAUTHENTICATED (16) or PERMISSION_DENIED (7). */
function credentialsRefused(settings: TemporalConnection, error: unknown): TemporalConnectionError | undefined {
  // The client wraps the server's answer: "Failed to connect to Temporal server" <- the gRPC error.
  const cause = (error as { cause?: unknown }).cause ?? error;
  const code = (cause as { code?: unknown }).code;
  const text = String((cause as Error).message ?? cause);
  if (code !== 16 && code !== 7 && !/unauthenticated|permission ?denied|unauthorized|valid authentication credentials/i.test(text)) return undefined;
  const setting = settings.origins.apiKey ?? settings.origins.clientCert ?? 'TEMPORAL_API_KEY';
  return new TemporalConnectionError(`Temporal at ${settings.address} refused the credentials of ${setting} for namespace ${settings.namespace}: ${text}`, setting);
}

async function explained(settings: TemporalConnection, error: unknown, verdict?: Verdict): Promise<Error> {
  const refused = credentialsRefused(settings, error);
  if (refused) return refused;
  const found = verdict ?? (await probe(settings));
  if (found.error) return found.error;
  return new TemporalConnectionError(`cannot connect to Temporal at ${settings.describe()}: ${(error as Error).message ?? String(error)}`, settings.origins.address);
}

/**
 * The commands' connection (gRPC in Node). With TLS, our handshake goes first: a TLS problem
 * fails at once, not after the SDK's 10 s connect deadline (which would also keep the process
 * alive that long). Without TLS the SDK's own failure is explained afterwards.
 */
export async function openClientConnection(settings: TemporalConnection): Promise<Connection> {
  const verdict = settings.tls === false ? undefined : await probe(settings);
  if (verdict?.decisive && verdict.error) throw verdict.error;
  try {
    return await Connection.connect(settings.sdkOptions());
  } catch (error) {
    throw await explained(settings, error, verdict);
  }
}

/** The worker's connection (Rust core: a TLS problem fails in milliseconds, then is explained). */
export async function openNativeConnection(settings: TemporalConnection): Promise<NativeConnection> {
  try {
    return await NativeConnection.connect(settings.sdkOptions());
  } catch (error) {
    throw await explained(settings, error);
  }
}
