import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type CliResult } from '../helpers/cli.js';
import { productEnv } from '../helpers/product.js';
import { services } from '../helpers/services.js';
import { createTestCa } from '../helpers/temporal-ca.js';
import { startWorkerProcess, type WorkerProcess } from '../helpers/worker-process.js';

// The connection settings of the `temporal` CLI, end to end: the built worker and CLI reach the
// dev server only through a TLS terminator that demands a client certificate, or an HTTP/2 proxy
// that demands an API key (as Temporal Cloud does).
const s = services();
const CLI = fileURLToPath(new URL('../../dist/src/cli.js', import.meta.url));
const SERVER_NAME = 'temporal.test';
const API_KEY = `erp4-test-key-${process.pid}-Xk29`;

const upstream = (() => {
  const colon = s.temporal.address.lastIndexOf(':');
  return { host: s.temporal.address.slice(0, colon), port: Number(s.temporal.address.slice(colon + 1)) };
})();

/** node `tls` in front of the dev server, refusing any client without a certificate of `ca`. */
async function startMtlsTerminator(server: { certPath: string; keyPath: string }, caPath: string) {
  const accepted: string[] = [];
  const terminator = tls.createServer(
    {
      cert: fs.readFileSync(server.certPath),
      key: fs.readFileSync(server.keyPath),
      ca: fs.readFileSync(caPath),
      requestCert: true,
      rejectUnauthorized: true,
      ALPNProtocols: ['h2'],
    },
    (socket) => {
      accepted.push(String(socket.getPeerCertificate().subject?.CN));
      const target = net.connect(upstream);
      socket.pipe(target).pipe(socket);
      socket.on('error', () => target.destroy());
      target.on('error', () => socket.destroy());
    },
  );
  terminator.on('tlsClientError', () => {});
  await new Promise<void>((resolve) => terminator.listen(0, '127.0.0.1', resolve));
  return { address: `127.0.0.1:${(terminator.address() as net.AddressInfo).port}`, accepted, close: () => new Promise<void>((resolve) => terminator.close(() => resolve())) };
}

/** An HTTP/2 (gRPC) proxy with TLS that sees every request's headers and refuses a missing or wrong API key. */
async function startApiKeyProxy(server: { certPath: string; keyPath: string }) {
  const requests: Array<{ path: string; authorization: string | undefined; tenant: string | undefined; userAgent: string | undefined }> = [];
  let refused = 0;
  const target = http2.connect(`http://${s.temporal.address}`);
  target.on('error', () => {});
  const proxy = http2.createSecureServer({ cert: fs.readFileSync(server.certPath), key: fs.readFileSync(server.keyPath) });
  proxy.on('stream', (stream, headers) => {
    const authorization = headers.authorization as string | undefined;
    requests.push({ path: String(headers[':path']), authorization, tenant: headers.tenant as string | undefined, userAgent: headers['user-agent'] as string | undefined });
    stream.on('error', () => {});
    if (authorization !== `Bearer ${API_KEY}`) {
      refused += 1;
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '16', 'grpc-message': 'invalid API key' }, { endStream: true });
      return;
    }
    const forwarded: http2.OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(headers)) if (!name.startsWith(':') || name === ':method' || name === ':path') forwarded[name] = value;
    const request = target.request(forwarded);
    request.on('error', () => stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR));
    stream.on('close', () => request.close());
    stream.pipe(request);
    let trailers: http2.IncomingHttpHeaders = {};
    request.on('trailers', (received) => (trailers = received));
    request.on('response', (response) => {
      const { ':status': status, ...rest } = response;
      // A trailers-only answer (an error) carries grpc-status in its headers and ends there.
      if ('grpc-status' in rest) {
        stream.respond({ ':status': status, ...rest }, { endStream: true });
        return;
      }
      stream.respond({ ':status': status, ...rest }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers(trailers));
      request.pipe(stream);
    });
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  return {
    address: `127.0.0.1:${(proxy.address() as net.AddressInfo).port}`,
    requests,
    refused: () => refused,
    close: async () => {
      target.destroy();
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
    },
  };
}

/** Runs the CLI (`worker` included), killing it if it has not ended after `timeoutMs`. */
function runCliTimed(args: string[], env: Record<string, string>, timeoutMs = 30_000): Promise<CliResult & { ms: number }> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
  });
}

describe('connecting to a secured Temporal, as the temporal CLI does', () => {
  let dir: string;
  let terminator: Awaited<ReturnType<typeof startMtlsTerminator>>;
  let proxy: Awaited<ReturnType<typeof startApiKeyProxy>>;
  let ca: ReturnType<typeof createTestCa>;
  let wrongCa: ReturnType<typeof createTestCa>;
  let client: { certPath: string; keyPath: string };
  let base: Record<string, string>;
  const workers: WorkerProcess[] = [];

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(s.workDir, 'temporal-tls-'));
    ca = createTestCa(dir, 'tls-test-ca');
    wrongCa = createTestCa(path.join(dir, 'wrong'), 'wrong-ca');
    const server = ca.issue('temporal-server', { serverNames: [SERVER_NAME] });
    client = ca.issue('erp4-worker', { client: true });
    terminator = await startMtlsTerminator(server, ca.certPath);
    proxy = await startApiKeyProxy(server);
    base = await productEnv(s, 'tls', { assets: false });
    delete base.TEMPORAL_ADDRESS;
  });
  afterAll(async () => {
    await Promise.all(workers.map((worker) => worker.stop()));
    await terminator?.close();
    await proxy?.close();
  });

  const mtls = () => ({
    ...base,
    TEMPORAL_ADDRESS: terminator.address,
    TEMPORAL_TLS_SERVER_CA_CERT_PATH: ca.certPath,
    TEMPORAL_TLS_SERVER_NAME: SERVER_NAME,
    TEMPORAL_TLS_CLIENT_CERT_PATH: client.certPath,
    TEMPORAL_TLS_CLIENT_KEY_PATH: client.keyPath,
  });

  it('mTLS: the worker and the CLI back up through a terminator that demands a client certificate', async () => {
    const env = { ...mtls(), BACKUP_ENV: 'tls-mtls' };
    workers.push(await startWorkerProcess(s, env, `tls-mtls-worker-${process.pid}`));
    const backup = await runCli(['backup', '--kind', 'daily'], env);
    expect(backup.stderr).toBe('');
    expect(backup.code).toBe(0);
    expect(backup.stdout).toMatch(/backup \d{8}T\d{6}Z-daily complete/);
    expect(terminator.accepted).toContain('erp4-worker');
  });

  it.each([
    ['no client certificate', { TEMPORAL_TLS_CLIENT_CERT_PATH: '', TEMPORAL_TLS_CLIENT_KEY_PATH: '' }, /TEMPORAL_TLS_CLIENT_CERT_PATH.*demands a client certificate|demands a client certificate.*TEMPORAL_TLS_CLIENT_CERT_PATH/],
    ['a wrong CA', { TEMPORAL_TLS_SERVER_CA_CERT_PATH: '' }, /not signed by the CA of TEMPORAL_TLS_SERVER_CA_CERT_PATH/],
    ['a wrong server name', { TEMPORAL_TLS_SERVER_NAME: 'other.test' }, /not for "other.test".*set TEMPORAL_TLS_SERVER_NAME/],
  ])('with %s the worker and the CLI fail at once, naming the setting', async (_case, change, message) => {
    const env = { ...mtls(), ...change };
    if ('TEMPORAL_TLS_SERVER_CA_CERT_PATH' in change) env.TEMPORAL_TLS_SERVER_CA_CERT_PATH = wrongCa.certPath;
    const results = await Promise.all([runCliTimed(['worker'], env), runCliTimed(['schedules', 'list'], env)]);
    for (const result of results) {
      expect(result.code, result.stdout + result.stderr).toBe(2);
      expect(result.stderr).toMatch(message);
      // Node start-up included; the SDK alone would wait for its 10 s deadline and name nothing.
      expect(result.ms).toBeLessThan(15_000);
    }
  });

  it('the worker reaching a TLS server without TLS fails at once, naming TEMPORAL_TLS', async () => {
    const result = await runCliTimed(['worker'], { ...base, TEMPORAL_ADDRESS: terminator.address });
    expect(result.code, result.stdout + result.stderr).toBe(2);
    expect(result.stderr).toMatch(/speaks TLS, but TLS is off; set TEMPORAL_TLS=true/);
    expect(result.ms).toBeLessThan(15_000);
  });

  it('a profile of the TOML file (TEMPORAL_CONFIG_FILE, TEMPORAL_PROFILE) carries the same connection', async () => {
    const file = path.join(dir, 'temporal.toml');
    fs.writeFileSync(
      file,
      [
        '[profile.secure]',
        `address = "${terminator.address}"`,
        `namespace = "${s.temporal.namespace}"`,
        '[profile.secure.tls]',
        `client_cert_path = "${client.certPath}"`,
        `client_key_path = "${client.keyPath}"`,
        `server_ca_cert_path = "${ca.certPath}"`,
        `server_name = "${SERVER_NAME}"`,
        '',
      ].join('\n'),
    );
    const env = { ...base, TEMPORAL_NAMESPACE: '', TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'secure' };
    const before = terminator.accepted.length;
    const list = await runCli(['schedules', 'list'], env);
    expect(list.stderr).toBe('');
    expect(list.code).toBe(0);
    expect(terminator.accepted.length).toBeGreaterThan(before);
    const unknown = await runCliTimed(['schedules', 'list'], { ...env, TEMPORAL_PROFILE: 'missing' });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain(`TEMPORAL_PROFILE: profile "missing" is not in ${file}; expected one of its profiles (secure)`);
  });

  it('an API key reaches the server as "authorization: Bearer", from the worker and the CLI, and nowhere else', async () => {
    const env = {
      ...base,
      BACKUP_ENV: 'tls-apikey',
      TEMPORAL_ADDRESS: proxy.address,
      TEMPORAL_API_KEY: API_KEY,
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: ca.certPath,
      TEMPORAL_TLS_SERVER_NAME: SERVER_NAME,
      TEMPORAL_GRPC_META_TENANT: 'erp4',
    };
    const worker = await startWorkerProcess(s, env, `tls-apikey-worker-${process.pid}`);
    workers.push(worker);
    const backup = await runCli(['backup', '--kind', 'daily'], env);
    expect(backup.stderr).toBe('');
    expect(backup.code).toBe(0);
    expect(backup.stdout).toMatch(/backup \d{8}T\d{6}Z-daily complete/);

    expect(proxy.refused()).toBe(0);
    expect(proxy.requests.every((request) => request.authorization === `Bearer ${API_KEY}` && request.tenant === 'erp4')).toBe(true);
    // Both clients: the worker's Rust core polls, the CLI's gRPC-js starts the workflow.
    expect(proxy.requests.some((request) => request.path.endsWith('/PollActivityTaskQueue'))).toBe(true);
    expect(proxy.requests.some((request) => request.path.endsWith('/StartWorkflowExecution'))).toBe(true);

    expect(fs.readFileSync(`/proc/${worker.process.pid}/cmdline`, 'utf8')).not.toContain(API_KEY);
    expect(fs.readFileSync(worker.process.logPath, 'utf8')).not.toContain(API_KEY);
    expect(backup.stdout).not.toContain(API_KEY);

    const wrongKey = { ...env, TEMPORAL_API_KEY: 'not-the-key' };
    for (const wrong of await Promise.all([runCliTimed(['worker'], wrongKey), runCliTimed(['schedules', 'list'], wrongKey)])) {
      expect(wrong.code, wrong.stdout + wrong.stderr).toBe(2);
      expect(wrong.stderr).toMatch(/refused the credentials of TEMPORAL_API_KEY/);
      expect(wrong.stdout + wrong.stderr).not.toContain('not-the-key');
    }
    expect(proxy.refused()).toBeGreaterThan(0);
  });
});
