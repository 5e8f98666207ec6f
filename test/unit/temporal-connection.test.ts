import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { inspect } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, redactedConfig } from '../../src/config.js';
import { createTestCa } from '../helpers/temporal-ca.js';

// The Temporal connection as the `temporal` CLI reads it (src/temporal/connection.ts, through
// @temporalio/envconfig): which combinations give which connection options.
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'erp4-temporal-connection-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const ca = createTestCa(dir, 'unit-ca');
const client = ca.issue('unit-client', { client: true });
const base = { DB_NAME: 'erp4', BACKUP_DIR: dir };
const API_KEY = 'api-key-Qw71.secret';

const connectionOf = (env: Record<string, string>) => loadConfig({ ...base, ...env }).temporal.connection;

describe('Temporal connection settings', () => {
  it('takes a profile of the TOML file, and the environment overrides its keys', () => {
    const file = path.join(dir, 'temporal.toml');
    fs.writeFileSync(
      file,
      [
        '[profile.prod]',
        'address = "prod.example.com:7233"',
        'namespace = "erp4-prod"',
        '[profile.prod.tls]',
        `client_cert_path = "${client.certPath}"`,
        `client_key_path = "${client.keyPath}"`,
        `server_ca_cert_path = "${ca.certPath}"`,
        'server_name = "temporal.prod.internal"',
        '[profile.prod.grpc_meta]',
        'x-tenant = "erp4"',
        '',
      ].join('\n'),
    );
    const config = loadConfig({ ...base, TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'prod', TEMPORAL_NAMESPACE: 'erp4-override' });
    expect(config.temporal.address).toBe('prod.example.com:7233');
    expect(config.temporal.namespace).toBe('erp4-override');
    const options = config.temporal.connection.sdkOptions();
    expect(options).toMatchObject({
      address: 'prod.example.com:7233',
      tls: { serverNameOverride: 'temporal.prod.internal' },
      metadata: { 'x-tenant': 'erp4' },
    });
    const tls = options.tls as { serverRootCACertificate: Uint8Array; clientCertPair: { crt: Uint8Array; key: Uint8Array } };
    expect(Buffer.from(tls.serverRootCACertificate)).toEqual(fs.readFileSync(ca.certPath));
    expect(Buffer.from(tls.clientCertPair.key)).toEqual(fs.readFileSync(client.keyPath));
    expect(config.temporal.connection.origins.clientCert).toBe(`tls.client_cert_path / client_cert_data of profile "prod" in ${file} (TEMPORAL_CONFIG_FILE)`);
    expect(config.temporal.connection.describe()).toBe(
      `prod.example.com:7233 namespace erp4-override (profile prod), TLS (CA: tls.server_ca_cert_path / server_ca_cert_data of profile "prod" in ${file} (TEMPORAL_CONFIG_FILE), server name temporal.prod.internal), client certificate`,
    );
  });

  it('connects in plain text by default, to the CLI default address', () => {
    expect(connectionOf({}).sdkOptions()).toEqual({ address: '127.0.0.1:7233' });
  });

  it('turns TLS on for an API key (as the CLI does), unless TEMPORAL_TLS=false says otherwise', () => {
    expect(connectionOf({ TEMPORAL_API_KEY: API_KEY }).sdkOptions()).toEqual({ address: '127.0.0.1:7233', apiKey: API_KEY, tls: true });
    expect(connectionOf({ TEMPORAL_API_KEY: API_KEY, TEMPORAL_TLS: 'false' }).sdkOptions()).toEqual({ address: '127.0.0.1:7233', apiKey: API_KEY, tls: false });
  });

  it('uses TLS with the system CAs for TEMPORAL_TLS=true or a server name alone', () => {
    expect(connectionOf({ TEMPORAL_TLS: 'true' }).sdkOptions().tls).toEqual({});
    expect(connectionOf({ TEMPORAL_TLS_SERVER_NAME: 'temporal.example.com' }).sdkOptions().tls).toEqual({ serverNameOverride: 'temporal.example.com' });
    expect(connectionOf({ TEMPORAL_TLS: 'true' }).tls).toEqual({ serverCa: 'the system trust store' });
  });

  it('reads certificates given as PEM text exactly as the same files', () => {
    const fromFiles = connectionOf({
      TEMPORAL_TLS_CLIENT_CERT_PATH: client.certPath,
      TEMPORAL_TLS_CLIENT_KEY_PATH: client.keyPath,
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: ca.certPath,
    }).sdkOptions();
    const fromData = connectionOf({
      TEMPORAL_TLS_CLIENT_CERT_DATA: fs.readFileSync(client.certPath, 'utf8'),
      TEMPORAL_TLS_CLIENT_KEY_DATA: fs.readFileSync(client.keyPath, 'utf8'),
      TEMPORAL_TLS_SERVER_CA_CERT_DATA: fs.readFileSync(ca.certPath, 'utf8'),
    }).sdkOptions();
    expect(fromData).toEqual(fromFiles);
    expect(fromFiles.tls).toHaveProperty('clientCertPair');
  });

  it('sends TEMPORAL_GRPC_META_* as gRPC metadata', () => {
    expect(connectionOf({ TEMPORAL_GRPC_META_TENANT: 'erp4' }).sdkOptions().metadata).toEqual({ tenant: 'erp4' });
  });

  it('refuses a path and PEM text for the same certificate, naming both', () => {
    const error = (() => {
      try {
        connectionOf({ TEMPORAL_TLS_SERVER_CA_CERT_PATH: ca.certPath, TEMPORAL_TLS_SERVER_CA_CERT_DATA: fs.readFileSync(ca.certPath, 'utf8') });
      } catch (caught) {
        return caught as ConfigError;
      }
      throw new Error('accepted');
    })();
    expect(error.issues).toEqual([{ variable: 'TEMPORAL_TLS_SERVER_CA_CERT_DATA', message: expect.stringContaining('set together with TEMPORAL_TLS_SERVER_CA_CERT_PATH') }]);
  });

  it('never shows the API key or the client key in JSON, util.inspect, describe() or errors', () => {
    const keyPem = fs.readFileSync(client.keyPath, 'utf8');
    const config = loadConfig({
      ...base,
      TEMPORAL_API_KEY: API_KEY,
      TEMPORAL_TLS_CLIENT_CERT_PATH: client.certPath,
      TEMPORAL_TLS_CLIENT_KEY_DATA: keyPem,
    });
    const keyBody = keyPem.split('\n')[1]!;
    for (const shown of [JSON.stringify(redactedConfig(config)), JSON.stringify(config), inspect(config, { depth: 10 }), config.temporal.connection.describe()]) {
      expect(shown).not.toContain(API_KEY);
      expect(shown).not.toContain(keyBody);
    }
    // A TOML file that does not parse: the parser's message would quote the line with the key.
    const broken = path.join(dir, 'broken-key.toml');
    fs.writeFileSync(broken, `[profile.default]\napi_key = "${API_KEY}\n`);
    for (const env of [
      { TEMPORAL_API_KEY: `${API_KEY} x`, TEMPORAL_TLS_CLIENT_KEY_DATA: `${keyPem}x` },
      { TEMPORAL_CONFIG_FILE: broken },
    ]) {
      let message = '';
      try {
        loadConfig({ ...base, ...env });
      } catch (error) {
        message = String(error);
      }
      expect(message).toMatch(/Invalid configuration/);
      expect(message).not.toContain(API_KEY);
      expect(message).not.toContain(keyBody);
    }
  });
});
