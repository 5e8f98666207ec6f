import { readFileSync } from 'node:fs';
import net from 'node:net';
import { Duplex } from 'node:stream';
import tls from 'node:tls';

/** libpq's sslmode values, weakest first. */
export const SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;
export type SslMode = (typeof SSL_MODES)[number];

/**
 * TLS to PostgreSQL with libpq's meanings (DB_SSLMODE, DB_SSLROOTCERT, DB_SSLCERT, DB_SSLKEY, or
 * the DRILL_DB_ ones), applied alike to node-pg (pgSslStream) and to the pg tools (pgSslEnv):
 *
 * - disable, allow: no TLS. libpq's `allow` would retry with TLS after the server refused a
 *   plaintext login; node-pg cannot, so both run as `disable` (a server demanding TLS refuses both).
 * - prefer: TLS when the server offers it, plaintext when it answers that it has none.
 * - require: TLS or nothing.
 * - verify-ca: TLS, and the server's certificate must chain to rootCertFile.
 * - verify-full: as verify-ca, and the certificate must name the host connected to.
 *
 * As in libpq, a root certificate file given to `prefer` or `require` is used: the chain is verified.
 * A Unix-socket connection never uses TLS (libpq's rule too).
 */
export interface PgTls {
  mode: SslMode;
  rootCertFile?: string;
  certFile?: string;
  keyFile?: string;
}

/** The environment variables that configured a connection: `DB_` or `DRILL_DB_` (for messages). */
export type SettingPrefix = 'DB_' | 'DRILL_DB_';

export interface TlsTarget {
  host: string;
  port: number;
  tls?: PgTls;
  settingPrefix?: SettingPrefix;
}

/** libpq's default sslmode. */
export const DEFAULT_SSL_MODE: SslMode = 'prefer';

const usesTls = (mode: SslMode) => mode !== 'disable' && mode !== 'allow';

/** PGSSLMODE and the certificate paths for pg_dump, pg_dumpall, pg_restore and psql. */
export function pgSslEnv(settings: PgTls | undefined): NodeJS.ProcessEnv {
  const mode = settings?.mode ?? DEFAULT_SSL_MODE;
  const env: NodeJS.ProcessEnv = { PGSSLMODE: usesTls(mode) ? mode : 'disable' };
  if (settings?.rootCertFile !== undefined) env.PGSSLROOTCERT = settings.rootCertFile;
  if (settings?.certFile !== undefined) env.PGSSLCERT = settings.certFile;
  if (settings?.keyFile !== undefined) env.PGSSLKEY = settings.keyFile;
  return env;
}

/**
 * node-pg's `stream` option for `target`, or undefined when no TLS is ever attempted. node-pg's
 * own `ssl` option cannot express libpq's modes (it verifies the host name unless told to verify
 * nothing, and fails where `prefer` falls back to plaintext): this socket negotiates TLS itself
 * (SSLRequest, then a TLS handshake on 'S' or plaintext on 'N'), so node-pg is given `ssl: false`.
 */
export function pgSslStream(target: TlsTarget): (() => Duplex) | undefined {
  const mode = target.tls?.mode ?? DEFAULT_SSL_MODE;
  if (!usesTls(mode) || target.host.startsWith('/')) return undefined;
  return () => new NegotiatingSocket(target, mode);
}

/** The SSLRequest message: length 8, then the code 1234.5679. */
const SSL_REQUEST = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);

/** Node's codes for a server certificate that does not chain to a trusted CA. */
const UNTRUSTED_CHAIN = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
]);

/** A TLS setting or the server's certificate is wrong: retrying cannot help (non-retryable, like a refused login). */
export class PgTlsError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PgTlsError';
  }
}

/**
 * The socket node-pg talks through: a net.Socket look-alike (connect, setNoDelay, setKeepAlive,
 * ref, unref, 'connect') that becomes a TLS socket or stays plaintext as the mode demands.
 */
class NegotiatingSocket extends Duplex {
  readonly #raw = new net.Socket();
  #inner: net.Socket | undefined;

  constructor(
    private readonly target: TlsTarget,
    private readonly mode: SslMode,
  ) {
    super();
    this.#raw.on('error', (error) => this.destroy(error));
    // A server that hangs up before the handshake: node-pg must see the end at once, as with a plain socket.
    this.#raw.on('close', () => this.destroy());
  }

  setNoDelay(noDelay?: boolean): this {
    this.#raw.setNoDelay(noDelay);
    return this;
  }

  setKeepAlive(enable?: boolean, initialDelay?: number): this {
    this.#raw.setKeepAlive(enable, initialDelay);
    return this;
  }

  ref(): this {
    this.#raw.ref();
    return this;
  }

  unref(): this {
    this.#raw.unref();
    return this;
  }

  connect(port: number, host: string): this {
    const raw = this.#raw;
    raw.connect(port, host, () => raw.write(SSL_REQUEST));
    raw.once('data', (reply: Buffer) => {
      const p = this.#prefix;
      // The answer is one byte; anything after it would be plaintext pretending to come over TLS (libpq refuses it too).
      if (reply.length !== 1) {
        this.destroy(new Error(`PostgreSQL at ${p}HOST ${host} ${p}PORT ${port} sent unexpected data in answer to the TLS request`));
        return;
      }
      if (reply[0] === 0x53 /* S */) return this.#startTls(host);
      if (reply[0] === 0x4e /* N */ && this.mode === 'prefer') return this.#attach(raw);
      this.destroy(
        reply[0] === 0x4e
          ? new PgTlsError(`PostgreSQL at ${p}HOST ${host} ${p}PORT ${port} does not accept TLS, but ${p}SSLMODE is ${this.mode}: turn ssl on in the server, or lower ${p}SSLMODE`)
          : new Error(`PostgreSQL at ${p}HOST ${host} ${p}PORT ${port} answered the TLS request with an error`),
      );
    });
    return this;
  }

  get #prefix(): SettingPrefix {
    return this.target.settingPrefix ?? 'DB_';
  }

  #startTls(host: string): void {
    const settings = this.target.tls;
    const p = this.#prefix;
    let options: tls.ConnectionOptions;
    try {
      options = {
        socket: this.#raw,
        host,
        // SNI must not carry an IP address (RFC 6066).
        ...(net.isIP(host) === 0 ? { servername: host } : {}),
        ...(settings?.rootCertFile !== undefined
          ? { ca: readFileSync(settings.rootCertFile), rejectUnauthorized: true }
          : { rejectUnauthorized: false }),
        // Only verify-full checks the name; verify-ca (and prefer/require with a root certificate) checks the chain alone.
        ...(this.mode === 'verify-full' ? {} : { checkServerIdentity: () => undefined }),
        ...(settings?.certFile !== undefined && settings.keyFile !== undefined
          ? { cert: readFileSync(settings.certFile), key: readFileSync(settings.keyFile) }
          : {}),
      };
    } catch (error) {
      this.destroy(new PgTlsError(`cannot read the TLS files of ${p}SSLROOTCERT, ${p}SSLCERT, ${p}SSLKEY: ${(error as Error).message}`, { cause: error }));
      return;
    }
    const secure = tls.connect(options);
    secure.once('secureConnect', () => this.#attach(secure));
    secure.on('error', (error: NodeJS.ErrnoException) => this.destroy(this.#explain(error, host)));
  }

  #explain(error: NodeJS.ErrnoException, host: string): Error {
    const p = this.#prefix;
    const code = error.code ?? '';
    if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
      return new PgTlsError(
        `the certificate of PostgreSQL at ${p}HOST ${host} does not name ${host} (${error.message}); set ${p}HOST to a name the certificate holds, or ${p}SSLMODE=verify-ca`,
        { cause: error },
      );
    }
    if (UNTRUSTED_CHAIN.has(code)) {
      return new PgTlsError(
        `the certificate of PostgreSQL at ${p}HOST ${host} is not trusted by ${p}SSLROOTCERT (${this.target.tls?.rootCertFile}): ${error.message}; set ${p}SSLROOTCERT to the CA that signed the server's certificate`,
        { cause: error },
      );
    }
    if (/alert (unknown ca|bad certificate|certificate required|certificate unknown)/i.test(error.message)) {
      return new PgTlsError(
        `PostgreSQL at ${p}HOST ${host} refused the client certificate (${error.message}); check ${p}SSLCERT and ${p}SSLKEY`,
        { cause: error },
      );
    }
    return error;
  }

  #attach(socket: net.Socket): void {
    this.#inner = socket;
    socket.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) socket.pause();
    });
    socket.on('end', () => this.push(null));
    socket.on('close', () => this.destroy());
    this.emit('connect');
  }

  override _read(): void {
    this.#inner?.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (!this.#inner) return callback(new Error('write before the PostgreSQL connection was established'));
    this.#inner.write(chunk, callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.#inner?.end();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#inner?.destroy();
    this.#raw.destroy();
    callback(error);
  }
}
