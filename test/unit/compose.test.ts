import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseEnv } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { CONFIG_VARIABLES, loadConfig } from '../../src/config.js';

// No Docker engine here: these checks read the files as compose would, without running them.
const root = path.resolve(import.meta.dirname, '../..');
const composeText = fs.readFileSync(path.join(root, 'docker-compose.temporal.yml'), 'utf8');
const envExampleText = fs.readFileSync(path.join(root, '.env.example'), 'utf8');

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  env_file?: string[];
  environment?: Record<string, string | Record<string, string>>;
  ports?: string[];
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }>;
}

// Compose honours YAML merge keys (`<<: *anchor`); so must the parser.
const services = (parse(composeText, { merge: true }) as { services: Record<string, Service> }).services;
const service = (name: string): Service => {
  const found = services[name];
  if (!found) throw new Error(`docker-compose.temporal.yml has no service ${name}`);
  return found;
};

/** "127.0.0.1:7233:7233" -> 7233 (the host port). */
const publishedPorts = (s: Service) => (s.ports ?? []).map((port) => Number(port.split(':').at(-2)));

const CREDENTIAL_KEY = /PASSWORD|PWD|SECRET|KEY|TOKEN/i;
const REFERENCE = /^\$\{[A-Z0-9_]+(?::?[-?][^}]*)?\}$/;

describe('docker-compose.temporal.yml', () => {
  it('has the Temporal stack, an S3-compatible store and the worker', () => {
    for (const name of ['postgresql', 'temporal', 'temporal-ui', 'minio', 'worker']) expect(services).toHaveProperty([name]);
  });

  it('publishes Temporal on 7233, the Web UI on 8080 and S3 on 9000, on the loopback interface only', () => {
    expect(publishedPorts(service('temporal'))).toContain(7233);
    expect(publishedPorts(service('temporal-ui'))).toContain(8080);
    expect(publishedPorts(service('minio'))).toContain(9000);
    for (const [name, s] of Object.entries(services)) {
      for (const port of s.ports ?? []) expect(port, `${name} publishes ${port}`).toMatch(/^127\.0\.0\.1:\d+:\d+$/);
    }
  });

  it('runs Temporal on PostgreSQL, after its database is healthy', () => {
    const temporal = service('temporal');
    expect(temporal.environment).toMatchObject({ DB: 'postgres12', POSTGRES_SEEDS: 'postgresql' });
    expect(temporal.depends_on?.postgresql).toEqual({ condition: 'service_healthy' });
    expect(service('postgresql').image).toMatch(/^postgres:15\./);
    expect(service('temporal-ui').environment).toMatchObject({ TEMPORAL_ADDRESS: 'temporal:7233' });
  });

  it('health-checks the long-running services, and waits only on conditions that can be met', () => {
    for (const name of ['postgresql', 'temporal', 'minio']) expect(service(name).healthcheck?.test.length).toBeGreaterThan(0);
    for (const [name, s] of Object.entries(services)) {
      for (const [dependency, { condition }] of Object.entries(s.depends_on ?? {})) {
        expect(['service_healthy', 'service_completed_successfully'], `${name} -> ${dependency}`).toContain(condition);
        if (condition === 'service_healthy') expect(service(dependency).healthcheck, `${dependency} needs a healthcheck`).toBeDefined();
      }
    }
  });

  it('builds the worker from the Dockerfile with its settings from .env, pointed at the temporal service', () => {
    const worker = service('worker');
    expect(worker.build).toEqual({ context: '.', dockerfile: 'Dockerfile' });
    expect(worker.env_file).toContain('.env');
    expect(worker.environment).toMatchObject({ TEMPORAL_ADDRESS: 'temporal:7233' });
    expect(worker.depends_on?.temporal).toEqual({ condition: 'service_healthy' });
  });

  it('pins every image tag (no latest, no bare major version)', () => {
    for (const [name, s] of Object.entries(services)) {
      if (s.image === undefined) {
        expect(s.build, `${name} has neither image nor build`).toBeDefined();
        continue;
      }
      const tag = /:([^:/]+)$/.exec(s.image)?.[1];
      expect(tag, `${name}: ${s.image}`).toBeDefined();
      expect(tag, `${name}: ${s.image}`).not.toBe('latest');
      expect(tag, `${name}: ${s.image}`).not.toMatch(/^\d+$/);
    }
  });

  it('holds no literal secret: credentials are ${...} references to .env', () => {
    const checked: string[] = [];
    for (const [name, s] of Object.entries(services)) {
      const environment = Object.entries(s.environment ?? {}).flatMap(([key, value]) =>
        typeof value === 'string' ? [[key, value] as const] : Object.entries(value),
      );
      for (const [key, value] of environment) {
        if (CREDENTIAL_KEY.test(key)) {
          expect(value, `${name}.${key}`).toMatch(REFERENCE);
          checked.push(`${name}.${key}`);
        }
        // Credentials inside a URL (user:password@host) must be references as well.
        const userInfo = /:\/\/([^/]*)@/.exec(value)?.[1];
        if (userInfo !== undefined) expect(userInfo.replace(/\$\{[^}]*\}/g, ''), `${name}.${key}`).toBe(':');
      }
    }
    expect(checked).toEqual(expect.arrayContaining(['postgresql.POSTGRES_PASSWORD', 'temporal.POSTGRES_PWD', 'minio.MINIO_ROOT_PASSWORD']));
  });

  it('interpolates only variables that .env.example defines', () => {
    const defined = parseEnv(envExampleText);
    const referenced = new Set([...composeText.matchAll(/(?<!\$)\$\{([A-Z0-9_]+)/g)].map((match) => match[1]));
    expect(referenced.size).toBeGreaterThan(0);
    for (const variable of referenced) expect(defined, `${variable} in .env.example`).toHaveProperty([variable as string]);
  });
});

describe('the worker image and its volume', () => {
  it('has a healthcheck: erp4-backup healthcheck, started after the worker had time to connect', () => {
    const worker = service('worker') as Service & { healthcheck: { test: string[]; start_period: string } };
    expect(worker.healthcheck.test).toEqual(['CMD', 'node', 'dist/src/cli.js', 'healthcheck']);
    expect(worker.healthcheck.start_period).toMatch(/^\d+s$/);
  });

  it("keeps BACKUP_DIR in a named volume that the image's user owns", () => {
    const worker = service('worker') as Service & { volumes: string[] };
    const backupDir = (worker.environment as Record<string, string>).BACKUP_DIR;
    const volume = worker.volumes.find((v) => v.split(':')[1] === backupDir);
    expect(volume, `a volume at BACKUP_DIR ${backupDir}`).toBeDefined();
    const source = volume!.split(':')[0]!;
    expect(source, 'a named volume, not a host directory created by root').toMatch(/^[a-z][a-z0-9-]*$/);
    expect(Object.keys((parse(composeText) as { volumes: Record<string, unknown> }).volumes)).toContain(source);
    const dockerfile = fs.readFileSync(path.join(root, 'Dockerfile'), 'utf8');
    const user = /^USER (\S+)$/m.exec(dockerfile)?.[1];
    expect(dockerfile).toContain(`chown ${user}:${user} ${backupDir}`);
  });
});

describe('.env.example', () => {
  it('mentions every configuration variable', () => {
    const mentioned = new Set([...envExampleText.matchAll(/^#? ?([A-Z][A-Z0-9_]*)=/gm)].map((match) => match[1]));
    expect(CONFIG_VARIABLES.filter((variable) => !mentioned.has(variable))).toEqual([]);
  });

  it('can be sourced by a shell (systemd EnvironmentFile, `set -a; . ./.env`) with the values compose reads', () => {
    const sourced = execFileSync('bash', ['-c', 'set -a && . ./.env.example && env -0'], { cwd: root, env: {}, encoding: 'utf8' });
    const shellValues = Object.fromEntries(sourced.split('\0').filter(Boolean).map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]));
    const values = parseEnv(envExampleText);
    expect(Object.keys(values).length).toBeGreaterThan(10);
    for (const [key, value] of Object.entries(values)) expect(shellValues[key], key).toBe(value);
  });

  it('holds no secret values', () => {
    const values = parseEnv(envExampleText);
    for (const [key, value] of Object.entries(values)) {
      if (CREDENTIAL_KEY.test(key)) expect(value, key).toBe('');
    }
  });

  it("is, together with the compose file's worker environment, a valid configuration", () => {
    const workerEnvironment = service('worker').environment as Record<string, string>;
    const config = loadConfig({ ...parseEnv(envExampleText), ...workerEnvironment });
    expect(config.temporal.address).toBe('temporal:7233');
    expect(config.s3).toMatchObject({ endpointUrl: 'http://minio:9000', forcePathStyle: true, sse: { serverSideEncryption: 'AES256' } });
    expect(config.local.backupDir).toBe('/var/lib/erp4-backup');
  });
});

describe('Dockerfile', () => {
  it('installs the tools the worker runs: pg_dump (postgresql-client), gpg, ssh-keygen (openssh-client: signed approvals)', () => {
    const dockerfile = fs.readFileSync(path.join(root, 'Dockerfile'), 'utf8');
    const runtimeStage = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
    const installed = [...runtimeStage.matchAll(/apt-get install -y --no-install-recommends ([^\\\n]+)/g)].flatMap((m) => m[1]!.trim().split(/\s+/));
    expect(installed).toEqual(expect.arrayContaining(['postgresql-client-15', 'postgresql-client-16', 'postgresql-client-17', 'gnupg', 'openssh-client']));
  });
});
