/**
 * The Temporal connection, read as the `temporal` CLI reads it: environment variables
 * (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS, TEMPORAL_TLS_*,
 * TEMPORAL_GRPC_META_*) over a profile (TEMPORAL_PROFILE, default `default`) of the TOML file
 * TEMPORAL_CONFIG_FILE (default `~/.config/temporalio/temporal.toml`), through Temporal's own
 * `@temporalio/envconfig`. The worker's NativeConnection and every command's Client are built
 * from the one TemporalConnection this returns (src/temporal/connect.ts).
 *
 * envconfig reads files only when connecting and passes over some mistakes silently (a key
 * without its certificate, an explicit config file that does not exist); here every file is read
 * and checked at load, and each problem names the variable (or the profile's key) to fix.
 *
 * No import from config.ts: config.ts calls readTemporalConnection, so this module keeps its
 * secrets (the API key, the client key, gRPC metadata) in private fields instead of Secret:
 * JSON and util.inspect show only the public, printable summary.
 */
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { loadClientConfig, loadClientConfigProfile, toClientOptions, type ClientConfigProfile, type ConfigDataSource } from '@temporalio/envconfig';

/** The `temporal` CLI's default frontend and namespace. */
export const DEFAULT_TEMPORAL_ADDRESS = '127.0.0.1:7233';
export const DEFAULT_TEMPORAL_NAMESPACE = 'default';

export interface ConnectionIssue {
  variable: string;
  message: string;
}

/** What the SDK's Connection.connect and NativeConnection.connect both take. */
export interface SdkConnectionOptions {
  address: string;
  tls?: boolean | { serverNameOverride?: string; serverRootCACertificate?: Uint8Array; clientCertPair?: { crt: Uint8Array; key: Uint8Array } };
  apiKey?: string;
  metadata?: Record<string, string>;
}

/** Where each setting came from: an environment variable, or a key of the profile in the TOML file. */
export interface ConnectionOrigins {
  readonly address: string;
  readonly tls: string | undefined;
  readonly serverName: string | undefined;
  readonly serverCa: string | undefined;
  readonly clientCert: string | undefined;
  readonly clientKey: string | undefined;
  readonly apiKey: string | undefined;
}

export class TemporalConnection {
  /** Printable summary: no secret in it (the options are private). */
  readonly tls: false | { readonly serverName: string | undefined; readonly serverCa: string; readonly clientCertificate: string | undefined };
  readonly apiKey: 'set' | undefined;
  readonly #options: SdkConnectionOptions;

  constructor(
    readonly address: string,
    readonly namespace: string,
    readonly profile: string | undefined,
    readonly origins: ConnectionOrigins,
    options: SdkConnectionOptions,
  ) {
    this.#options = options;
    const tls = options.tls;
    this.tls =
      tls === undefined || tls === false
        ? false
        : {
            serverName: tls === true ? undefined : tls.serverNameOverride,
            serverCa: origins.serverCa ?? 'the system trust store',
            clientCertificate: origins.clientCert,
          };
    this.apiKey = options.apiKey === undefined ? undefined : 'set';
  }

  /** For Connection.connect / NativeConnection.connect; holds secrets: never log it. */
  sdkOptions(): SdkConnectionOptions {
    return this.#options;
  }

  /** One line for logs: where, and how it authenticates (no secret). */
  describe(): string {
    const how = [
      this.tls === false ? 'plain (no TLS)' : `TLS (CA: ${this.tls.serverCa}${this.tls.serverName ? `, server name ${this.tls.serverName}` : ''})`,
      this.tls !== false && this.tls.clientCertificate ? 'client certificate' : undefined,
      this.apiKey ? 'API key' : undefined,
    ].filter(Boolean);
    return `${this.address} namespace ${this.namespace}${this.profile ? ` (profile ${this.profile})` : ''}, ${how.join(', ')}`;
  }
}

const TLS_VARIABLES = {
  clientCert: { path: 'TEMPORAL_TLS_CLIENT_CERT_PATH', data: 'TEMPORAL_TLS_CLIENT_CERT_DATA', toml: 'tls.client_cert_path / client_cert_data' },
  clientKey: { path: 'TEMPORAL_TLS_CLIENT_KEY_PATH', data: 'TEMPORAL_TLS_CLIENT_KEY_DATA', toml: 'tls.client_key_path / client_key_data' },
  serverCACert: { path: 'TEMPORAL_TLS_SERVER_CA_CERT_PATH', data: 'TEMPORAL_TLS_SERVER_CA_CERT_DATA', toml: 'tls.server_ca_cert_path / server_ca_cert_data' },
} as const;

/** The variables envconfig reads: TEMPORAL_* (empty = unset, as in config.ts) and where the default TOML file lives. */
function envconfigEnvironment(env: NodeJS.ProcessEnv): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined) continue;
    // An empty TEMPORAL_GRPC_META_X removes that header of the profile (envconfig's rule).
    if (name.startsWith('TEMPORAL_GRPC_META_') || (value !== '' && (name.startsWith('TEMPORAL_') || ['HOME', 'XDG_CONFIG_HOME', 'APPDATA'].includes(name)))) {
      vars[name] = value;
    }
  }
  return vars;
}

/** The TOML file envconfig reads (the `temporal` CLI's rule), for messages. */
function configFilePath(vars: Record<string, string>): string | undefined {
  if (vars.TEMPORAL_CONFIG_FILE) return vars.TEMPORAL_CONFIG_FILE;
  const base = vars.XDG_CONFIG_HOME && path.isAbsolute(vars.XDG_CONFIG_HOME) ? vars.XDG_CONFIG_HOME : vars.HOME ? path.join(vars.HOME, '.config') : undefined;
  if (process.platform === 'darwin' && vars.HOME) return path.join(vars.HOME, 'Library', 'Application Support', 'temporalio', 'temporal.toml');
  return base === undefined ? undefined : path.join(base, 'temporalio', 'temporal.toml');
}

type PemKind = 'certificate' | 'private key';

/** The bytes of a PEM source, or what is wrong with it. */
function readPem(source: ConfigDataSource, kind: PemKind): { bytes: Buffer; certificate?: X509Certificate; key?: KeyObject } | string {
  let bytes: Buffer;
  if ('path' in source) {
    const file = path.resolve(source.path);
    try {
      if (!fs.statSync(file).isFile()) return `${file} is not a file`;
      bytes = fs.readFileSync(file);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      return code === 'ENOENT' ? `${file} does not exist` : `${file} cannot be read (${code ?? String(error)})`;
    }
  } else {
    bytes = Buffer.from(source.data);
  }
  const where = 'path' in source ? path.resolve(source.path) : 'the value';
  const text = bytes.toString('utf8');
  try {
    if (kind === 'certificate') {
      if (!text.includes('-----BEGIN CERTIFICATE-----')) return `${where} is not a PEM certificate (no -----BEGIN CERTIFICATE----- line)`;
      return { bytes, certificate: new X509Certificate(bytes) };
    }
    if (!/-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----/.test(text)) return `${where} is not a PEM private key (no -----BEGIN PRIVATE KEY----- line)`;
    return { bytes, key: createPrivateKey(bytes) };
  } catch (error) {
    // Node's message names the parsing problem, never the key's bytes.
    return `${where} is not a usable PEM ${kind} (${(error as Error).message})`;
  }
}

/**
 * The connection the environment (and the TOML profile it selects) describes, or every problem
 * with it, each naming the variable to fix. `env` is the process environment.
 */
export function readTemporalConnection(env: NodeJS.ProcessEnv): { connection: TemporalConnection | undefined; issues: ConnectionIssue[] } {
  const vars = envconfigEnvironment(env);
  const issues: ConnectionIssue[] = [];
  const fail = (variable: string, message: string) => ({ connection: undefined, issues: [...issues, { variable, message }] });
  const file = configFilePath(vars);
  const profileName = vars.TEMPORAL_PROFILE;

  // envconfig ignores a missing file; the CLI refuses an explicit one, and so do we.
  if (vars.TEMPORAL_CONFIG_FILE !== undefined && !fs.existsSync(vars.TEMPORAL_CONFIG_FILE)) {
    return fail('TEMPORAL_CONFIG_FILE', `${path.resolve(vars.TEMPORAL_CONFIG_FILE)} does not exist; expected a TOML file of [profile.<name>] tables (the temporal CLI's format)`);
  }
  let profile: ClientConfigProfile;
  try {
    profile = loadClientConfigProfile({ overrideEnvVars: vars });
  } catch (error) {
    const message = (error as Error).message;
    if (/^Profile '.*' not found/.test(message)) {
      let known: string[] = [];
      try {
        known = Object.keys(loadClientConfig({ overrideEnvVars: vars }).profiles);
      } catch {
        // The file was readable a moment ago; the list is only a hint.
      }
      return fail(
        'TEMPORAL_PROFILE',
        `profile ${JSON.stringify(profileName)} is not in ${file ?? 'any config file'}; expected one of its profiles (${known.join(', ') || 'it has none'}) or TEMPORAL_PROFILE unset`,
      );
    }
    const both = /Cannot specify both (\w+)_path and \w+_data/.exec(message)?.[1];
    if (both) {
      const variables = Object.values(TLS_VARIABLES).find((v) => v.path.endsWith(`${both.toUpperCase()}_PATH`));
      return fail(variables?.data ?? 'TEMPORAL_CONFIG_FILE', `set together with ${variables?.path ?? `${both}_path`} (from the environment or the profile); expected one of them`);
    }
    // Not the parser's message: it quotes the offending line, which may hold an api_key.
    const { line, column, code } = error as { line?: number; column?: number; code?: string };
    const why = line !== undefined ? `is not valid TOML (line ${line}, column ${column})` : `cannot be read (${code ?? (error as Error).name})`;
    return fail('TEMPORAL_CONFIG_FILE', `${file ?? 'the config file'} ${why}; expected a TOML file of [profile.<name>] tables (the temporal CLI's format)`);
  }

  const inProfile = (key: string) => `${key} of profile ${JSON.stringify(profileName ?? 'default')} in ${file} (TEMPORAL_CONFIG_FILE)`;
  const originOf = (variables: string[], tomlKey: string, present: boolean): string | undefined =>
    variables.find((variable) => vars[variable] !== undefined) ?? (present ? inProfile(tomlKey) : undefined);
  // A problem with a value from the profile is reported against TEMPORAL_CONFIG_FILE, naming the key.
  const variableOf = (origin: string) => (origin.includes('(TEMPORAL_CONFIG_FILE)') ? 'TEMPORAL_CONFIG_FILE' : origin);

  if (vars.TEMPORAL_TLS_DISABLE_HOST_VERIFICATION === 'true' || vars.TEMPORAL_TLS_DISABLE_HOST_VERIFICATION === '1') {
    issues.push({
      variable: 'TEMPORAL_TLS_DISABLE_HOST_VERIFICATION',
      message: "is true, which Temporal's TypeScript SDK cannot do; expected it unset, and TEMPORAL_TLS_SERVER_NAME set to a name in the server's certificate",
    });
  }

  const tls = profile.tls ?? {};
  const origins: ConnectionOrigins = {
    address: originOf(['TEMPORAL_ADDRESS'], 'address', profile.address !== undefined) ?? `the default ${DEFAULT_TEMPORAL_ADDRESS}`,
    tls: originOf(['TEMPORAL_TLS'], 'tls.disabled', tls.disabled !== undefined),
    serverName: originOf(['TEMPORAL_TLS_SERVER_NAME'], 'tls.server_name', tls.serverName !== undefined),
    serverCa: originOf([TLS_VARIABLES.serverCACert.path, TLS_VARIABLES.serverCACert.data], TLS_VARIABLES.serverCACert.toml, tls.serverCACert !== undefined),
    clientCert: originOf([TLS_VARIABLES.clientCert.path, TLS_VARIABLES.clientCert.data], TLS_VARIABLES.clientCert.toml, tls.clientCert !== undefined),
    clientKey: originOf([TLS_VARIABLES.clientKey.path, TLS_VARIABLES.clientKey.data], TLS_VARIABLES.clientKey.toml, tls.clientKey !== undefined),
    apiKey: originOf(['TEMPORAL_API_KEY'], 'api_key', profile.apiKey !== undefined),
  };

  const checked = (source: ConfigDataSource | undefined, origin: string | undefined, kind: PemKind, expected: string) => {
    if (source === undefined || origin === undefined) return undefined;
    const result = readPem(source, kind);
    if (typeof result === 'string') {
      issues.push({ variable: variableOf(origin), message: `${origin === variableOf(origin) ? '' : `${origin}: `}${result}; expected ${expected}` });
      return undefined;
    }
    return result;
  };
  const ca = checked(tls.serverCACert, origins.serverCa, 'certificate', "the PEM certificate of the CA that signed the Temporal server's certificate");
  const cert = checked(tls.clientCert, origins.clientCert, 'certificate', 'the PEM client certificate the server accepts (mTLS)');
  const key = checked(tls.clientKey, origins.clientKey, 'private key', "the unencrypted PEM private key of the client certificate");
  if (origins.clientKey !== undefined && origins.clientCert === undefined) {
    issues.push({ variable: 'TEMPORAL_TLS_CLIENT_CERT_PATH', message: `not set, but ${origins.clientKey} is; expected the client certificate of that key (both or neither)` });
  }
  if (origins.clientCert !== undefined && origins.clientKey === undefined) {
    issues.push({ variable: 'TEMPORAL_TLS_CLIENT_KEY_PATH', message: `not set, but ${origins.clientCert} is; expected the private key of that certificate (both or neither)` });
  }
  if (cert?.certificate && key?.key && !cert.certificate.checkPrivateKey(key.key)) {
    issues.push({ variable: variableOf(origins.clientKey as string), message: `is not the private key of the certificate in ${origins.clientCert}; expected the key that certificate was issued for` });
  }
  if (issues.length > 0) return { connection: undefined, issues };

  // envconfig's own mapping: TLS when the profile or the environment says anything about TLS,
  // or an API key is set (unless TLS is explicitly disabled); files are read here.
  const { connectionOptions, namespace } = toClientOptions(profile);
  const options: SdkConnectionOptions = { address: connectionOptions.address ?? DEFAULT_TEMPORAL_ADDRESS };
  if (connectionOptions.tls !== undefined && connectionOptions.tls !== null) options.tls = connectionOptions.tls;
  if (connectionOptions.apiKey !== undefined) options.apiKey = connectionOptions.apiKey as string;
  if (connectionOptions.metadata !== undefined && Object.keys(connectionOptions.metadata).length > 0) {
    options.metadata = connectionOptions.metadata as Record<string, string>;
  }
  const connection = new TemporalConnection(options.address, namespace ?? DEFAULT_TEMPORAL_NAMESPACE, profileName, origins, options);
  return { connection, issues };
}
