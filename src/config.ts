/**
 * Environment -> one typed, frozen Config. Every problem is reported at once in one
 * ConfigError naming the variable (`VARIABLE: what is wrong; expected ...`).
 *
 * An empty value (`FOO=` in a .env file) counts as unset. Relative paths resolve against the
 * working directory. Secrets are wrapped in `Secret`: JSON, util.inspect and string templates
 * show `***`; only `.reveal()` gives the value, at the one place that hands it to a child's
 * environment or a client. The Config stays in the worker: never pass it to a workflow.
 *
 * | Variable | Default | Meaning and rule |
 * |---|---|---|
 * | BACKUP_ENV | `poc` | environment name in the layout `erp4/<env>/...`; `[a-z0-9][a-z0-9-]*` |
 * | DB_HOST | `localhost` | S20: host name, IP address, or absolute Unix-socket directory |
 * | DB_PORT | `5432` | S20: 1-65535 |
 * | DB_USER | `postgres` | S20: role name |
 * | DB_PASSWORD | - | S20, secret: handed to pg tools as PGPASSWORD, never in argv |
 * | DB_NAME | required | S20: database to back up, taken verbatim (quotes and spaces allowed; at most 63 bytes) |
 * | PG_BIN_DIR | PATH | directory holding pg_dump, pg_dumpall, pg_restore, psql |
 * | DB_SSLMODE | `prefer` | libpq's sslmode for node-pg and every pg tool alike: `disable`, `allow` (runs as disable), `prefer`, `require`, `verify-ca`, `verify-full` (src/pg/tls.ts) |
 * | DB_SSLROOTCERT | - | PEM file of the CA(s) the server's certificate must chain to; required by verify-ca and verify-full, and verifies the chain under prefer/require too (libpq's rule) |
 * | DB_SSLCERT, DB_SSLKEY | - | PEM client certificate and its unencrypted private key (both or neither); the key must not be readable by group or others (libpq's rule: 0600, or 0640 owned by root) |
 * | S3_BUCKET | - | S10: enables the S3 repository; S3 bucket-name rules |
 * | S3_PREFIX | `erp4` | S10/S14: key prefix; `/`-separated `[A-Za-z0-9._-]` segments, no `..` |
 * | S3_REGION | `ap-northeast-1` | S10 |
 * | S3_ENDPOINT_URL | AWS | S10: http(s) URL of an S3-compatible store; implies path-style |
 * | S3_PART_SIZE_MB | `8` | multipart part size, 5-5120 MiB (the AWS CLI's default); memory holds 4 parts per upload; an object over 10,000 parts (S3's limit) gets larger parts |
 * | SSE_KMS_KEY_ID | - | S11: SSE-KMS key id, key ARN, alias (e.g. `alias/erp4-backup`) or alias ARN |
 * | SSE_S3 | - | S11: `AES256` for SSE-S3; with S3_BUCKET exactly one of SSE_KMS_KEY_ID, SSE_S3 is required |
 * | S3_WRITER_ACCESS_KEY_ID, S3_WRITER_SECRET_ACCESS_KEY | SDK chain | S15: write-only role used by backups (both or neither; secret) |
 * | S3_READER_ACCESS_KEY_ID, S3_READER_SECRET_ACCESS_KEY | SDK chain | S15: read-only role used by restores (both or neither; secret) |
 * | S3_PRUNER_ACCESS_KEY_ID, S3_PRUNER_SECRET_ACCESS_KEY | SDK chain | S15: role used by prune: list, read manifests, delete (both or neither; secret) |
 * | S3_COPY_BUCKET | - | S8: enables the off-site copy, a second S3 repository `s3-copy` (another bucket, region or account); needs S3_BUCKET |
 * | S3_COPY_PREFIX | `erp4` | S8: key prefix in S3_COPY_BUCKET, as S3_PREFIX |
 * | S3_COPY_REGION | `ap-northeast-1` | S8: region of S3_COPY_BUCKET |
 * | S3_COPY_ENDPOINT_URL | AWS | S8: http(s) URL of an S3-compatible store holding S3_COPY_BUCKET |
 * | S3_COPY_SSE_KMS_KEY_ID, S3_COPY_SSE_S3 | - | S11: server-side encryption of the copy; exactly one is required with S3_COPY_BUCKET |
 * | S3_COPY_ACCESS_KEY_ID, S3_COPY_SECRET_ACCESS_KEY | SDK chain | S8: credentials of the copy's account, for every role (both or neither; secret) |
 * | S3_OBJECT_LOCK_MODE | off | immutable backups: `governance` or `compliance`; every object put into S3_BUCKET gets an S3 Object Lock retain-until date derived from S3_RETENTION, and no existing key is overwritten (`If-None-Match: *`); the bucket must have been created with Object Lock (checked at start) |
 * | S3_COPY_OBJECT_LOCK_MODE | off | the same for S3_COPY_BUCKET (the off-site copy) |
 * | LOCAL_RETENTION | `7d` | S7: generations kept in BACKUP_DIR: `<N>d` (N days of every kind but manual) or `gfs` (S8: 14 daily, 8 weekly, 12 monthly, critical 48 h) |
 * | S3_RETENTION | `gfs` | S8/S16: the same, for S3 and the off-site copy; also what `lifecycle apply` derives the bucket's rules from |
 * | PRUNE_ABANDONED_AFTER | `24h` | prune reaps artifacts without a manifest and unfinished multipart uploads older than this |
 * | GPG_RECIPIENT | - | S12: user id, e-mail or fingerprint; enables OpenPGP encryption |
 * | GPG_PUBLIC_KEY_FILE | - | S12: ASCII-armoured public key(s); required with GPG_RECIPIENT |
 * | GPG_PRIVATE_KEY_FILE | - | restore only: ASCII-armoured private key(s) that decrypt backups: a file (may hold several keys) or a directory whose `*.asc` files hold them (key rotation: old and new keys side by side); a key file `<name>.asc` in the directory may have its own passphrase in `<name>.passphrase` |
 * | GPG_PASSPHRASE_FILE | - | restore only: file holding the private keys' passphrase (keys without their own `.passphrase` file) |
 * | GPG_PASSPHRASE | - | restore only, secret: the passphrase itself (or use GPG_PASSPHRASE_FILE, not both) |
 * | REMOTE_HOST | - | S17: enables the copy to another host over SFTP; host name or IP address |
 * | REMOTE_PORT | `22` | S17: 1-65535 |
 * | REMOTE_USER | current OS user | S17: login name on REMOTE_HOST |
 * | REMOTE_DIR | required with REMOTE_HOST | S17/S18: absolute directory on REMOTE_HOST |
 * | REMOTE_SSH_KEY | required with REMOTE_HOST | S17: private key file that logs in |
 * | REMOTE_HOST_KEY | required with REMOTE_HOST | the host's public key (`ssh-ed25519 AAAA...` or a known_hosts line) or its `SHA256:...` fingerprint |
 * | REMOTE_KEEP_DAYS | never pruned | S17: days a generation is kept on REMOTE_HOST; positive integer |
 * | PDF_PROVIDER | `none` | S2: `local` backs up ASSET_DIR; `s3` and `none` back up no files |
 * | ASSET_DIR | required with PDF_PROVIDER=local | S2: absolute, existing directory of PDF/attachment files |
 * | BACKUP_DIR | `./backups` | S19: local repository and staging root (made absolute) |
 * | BACKUP_PREFIX | `erp4` | S19: file-name prefix; `[A-Za-z0-9][A-Za-z0-9._-]{0,63}`, no `..` |
 * | BACKUP_FILE | - | S19: the `pg_dump -Fc` file `erp4-backup import` brings into the local repository (a dump of the old scripts); must stay inside BACKUP_DIR, no shell metacharacters |
 * | BACKUP_GLOBALS_FILE, BACKUP_ASSETS_FILE | - | S19: with BACKUP_FILE, its `pg_dumpall --globals-only` script and the tar of its PDF files (optional); the same rules |
 * | TEMPORAL_ADDRESS | `127.0.0.1:7233` | Temporal frontend `host:port` (the profile's `address` when unset) |
 * | TEMPORAL_NAMESPACE | `default` | Temporal namespace (the profile's `namespace` when unset) |
 * | TEMPORAL_TASK_QUEUE | `erp4-backup` | task queue of the worker |
 * | TEMPORAL_API_KEY | - | secret: API key (Temporal Cloud), sent as `authorization: Bearer`; implies TLS |
 * | TEMPORAL_TLS | off | `true` connects with TLS (system CAs unless TEMPORAL_TLS_SERVER_CA_CERT_PATH); any TEMPORAL_TLS_* or an API key implies it; `false` forces it off |
 * | TEMPORAL_TLS_CLIENT_CERT_PATH, TEMPORAL_TLS_CLIENT_KEY_PATH | - | mTLS: PEM client certificate and its unencrypted PEM key (both or neither) |
 * | TEMPORAL_TLS_CLIENT_CERT_DATA, TEMPORAL_TLS_CLIENT_KEY_DATA | - | the same as PEM text instead of files (the key is a secret) |
 * | TEMPORAL_TLS_SERVER_CA_CERT_PATH, TEMPORAL_TLS_SERVER_CA_CERT_DATA | system CAs | PEM CA certificate(s) that signed the server's certificate |
 * | TEMPORAL_TLS_SERVER_NAME | the address's host | name the server's certificate must carry (and SNI) |
 * | TEMPORAL_TLS_DISABLE_HOST_VERIFICATION | `false` | `true` is refused: the TypeScript SDK cannot skip it; set TEMPORAL_TLS_SERVER_NAME |
 * | TEMPORAL_PROFILE | `default` | profile of TEMPORAL_CONFIG_FILE to use; the variables above override its keys |
 * | TEMPORAL_CONFIG_FILE | `~/.config/temporalio/temporal.toml` | the `temporal` CLI's TOML profiles file; an explicit one must exist |
 * | WORKER_SHUTDOWN_GRACE | `10m` | on SIGTERM the worker stops polling and lets activities in flight finish this long, then cancels them; a second SIGTERM cuts off at once |
 * | WORKER_HOST_ID | host name + `-` + 8 hex of sha256(BACKUP_DIR) | this worker's host identity: work needing its disk goes to task queue `<TEMPORAL_TASK_QUEUE>/host/<id>`; `[A-Za-z0-9][A-Za-z0-9._-]{0,99}`; keep it stable across restarts |
 * | CRITICAL_TABLES | none | S6/S9: comma list of `table` or `schema.table` as in SQL: unquoted names lower-case (non-ASCII letters allowed), any other name double-quoted (`"会計"."取引先"`); schema defaults to `public`; every table must exist (a `critical` backup is refused before anything is dumped) |
 * | SCHEMA_VERSION_QUERY | - | S14: SQL returning one value, recorded as `schema_version` |
 * | FINGERPRINT_QUERIES_FILE | every table | S26: JSON array `[{"table": "public.invoices", "sums": ["amount"]}]`: the tables (row counts) and numeric columns (sums) of the fingerprint, replacing the default scan of every table for large databases |
 * | DB_LOCK_TIMEOUT | `5m` | how long a backup's pg_dump and fingerprint queries wait for a table lock (e.g. a migration's ACCESS EXCLUSIVE) before the attempt fails naming the blocking session; 3 attempts, then the backup fails; `90s`, `5m`, `1h`, at most `24h` |
 * | NOTIFY_WEBHOOK_URL | - | http(s) URL notified of failures (treated as a secret: such URLs carry tokens) |
 * | TIME_ZONE | `Asia/Tokyo` | IANA zone of schedules and retention calendars |
 * | RESTORE_APPROVERS | none | S13: comma list `name:role`, e.g. `alice:admin,bob:management` |
 * | RESTORE_APPROVAL_TIMEOUT | `24h` | S22: how long a restore waits for approval; `90s`, `30m`, `24h`, `1d12h` |
 * | RESTORE_TARGET_DB | DB_NAME | S21: the database a production Restore creates empty and loads; it must not exist yet (at most 63 bytes) |
 * | RESTORE_JOBS | the cores (at most 8) | `pg_restore --jobs` of a restore or drill: parallel jobs, 1-64 |
 * | RESTORE_ASSET_DIR | ASSET_DIR | S23: absolute directory a production Restore puts the PDF files into; must be absent or empty |
 * | RESTORE_SMOKE_URLS | none | S21: comma list of http(s) URLs that must answer 2xx after a production Restore |
 * | RESTORE_ALLOWED_SIGNERS_FILE | - | S13: the approvers' OpenSSH public keys in `allowed_signers` form (`alice ssh-ed25519 AAAA...`), one line per key, each naming RESTORE_APPROVERS names only; approvals count only when signed by one of them (re-read at every verification) |
 * | DRILL_ACCEPT_UNSIGNED_APPROVALS | `false` | `true` lets a drill count an unsigned approval from a RESTORE_APPROVERS name; a production Restore never does |
 * | DRILL_DECRYPT_BEFORE_APPROVAL | `true` | S25: `true` lets drills decrypt while they wait for approve-restore (shorter wall time to a restored drill); `false` decrypts after approval, as a production Restore always does |
 * | DRILL_PREAPPROVED | `false` | S25: `true` lets drills restore into their scratch database without approve-restore (scheduled drills); a production Restore always waits |
 * | DRILL_LATEST_DATA_QUERY | - | S27: SQL returning the time of the newest row (e.g. `SELECT max(issued_at) FROM invoices`); must be no older than generated_at minus RPO_DAILY (RPO_CRITICAL for critical and weekly-full backups) |
 * | DRILL_CHECKS_FILE | - | S26: SQL file of named checks: `-- name: <name>` blocks, each returning one row with `expected` and `actual` |
 * | DRILL_SMOKE_URLS | none | S21/S25: comma list of http(s) URLs (`/health`, main APIs) that must answer 2xx while the drill's database is up |
 * | DRILL_BATCH_RESUME_QUERY | - | S27: SQL returning one row per batch job with columns `job` and `resumable` (boolean) |
 * | DRILL_DB_HOST | - | S25: a separate PostgreSQL for drills (host name or IP address); production is then never touched by a drill |
 * | DRILL_DB_PORT | `5432` | with DRILL_DB_HOST: 1-65535 |
 * | DRILL_DB_USER | `postgres` | with DRILL_DB_HOST: a role that may create databases (and roles, for apply-roles) |
 * | DRILL_DB_PASSWORD | - | with DRILL_DB_HOST, secret; DB_PASSWORD is never sent to the drill server |
 * | DRILL_DB_SSLMODE, DRILL_DB_SSLROOTCERT, DRILL_DB_SSLCERT, DRILL_DB_SSLKEY | `prefer`, - | with DRILL_DB_HOST: as DB_SSL*, for the drill server; never inherited from the DB_SSL* ones |
 * | DRILL_RESTORE_OWNERS | `apply-roles` | with DRILL_DB_HOST: `apply-roles` creates the backup's roles (globals dump) on the drill server and restores owners; `skip` restores without owners and privileges |
 * | SCHEDULE_DAILY | `02:00` | S29: time of the daily backup in TIME_ZONE, `HH:MM` |
 * | SCHEDULE_CRITICAL | `05:00` | S9: one of the four backups of CRITICAL_TABLES a day, 6 h apart, `HH:MM` |
 * | SCHEDULE_WEEKLY_FULL | `sun 03:00` | S6: day of the week and time of the weekly full backup of CRITICAL_TABLES |
 * | SCHEDULE_RESTORE_DRILL | `1 10:00` | S25: day of the month (1-28) and time of the monthly drill (office hours: it waits for approval) |
 * | SCHEDULE_PRUNE | `06:00` | S8: time of the daily prune, after the backup window, `HH:MM` |
 * | RPO_DAILY | `24h` | S9: the freshness watchdog alerts when the newest whole-database backup is older |
 * | RPO_CRITICAL | `6h` | S9: ... when the newest backup holding CRITICAL_TABLES is older (checked when CRITICAL_TABLES is set) |
 * | DRILL_MAX_AGE | `35d` | S25: ... when the newest restore drill is older (or failed) |
 * | OFFSITE_MAX_LAG | `2h` | S8/S17: ... when S3 or REMOTE_HOST has lacked a backup the local repository holds for longer |
 * | METRICS_BIND_ADDRESS | off | `host:port` of the worker's Prometheus endpoint `/metrics` (e.g. `0.0.0.0:9464`) |
 * | LOG_LEVEL | `INFO` | the worker's log level: TRACE, DEBUG, INFO, WARN, ERROR (Temporal's own messages included) |
 * | LOG_FORMAT | `text` | `text` (one readable line per message) or `json` (one JSON object per line, for log shippers) |
 * | DB_PASSWORD_FILE, S3_WRITER_SECRET_ACCESS_KEY_FILE, S3_READER_SECRET_ACCESS_KEY_FILE, S3_PRUNER_SECRET_ACCESS_KEY_FILE, S3_COPY_SECRET_ACCESS_KEY_FILE, TEMPORAL_API_KEY_FILE, NOTIFY_WEBHOOK_URL_FILE, DRILL_DB_PASSWORD_FILE | - | the secret without `_FILE` read from this file (Docker secrets, systemd credentials), one trailing newline removed; not together with the variable itself (src/secret-files.ts) |
 */
import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { inspect } from 'node:util';
import { z } from 'zod';
import { defaultHostId, HOST_ID } from './host.js';
import { parseFingerprintSpec, type FingerprintTable } from './pg/fingerprint.js';
import { DEFAULT_SSL_MODE, SSL_MODES, type PgTls, type SslMode } from './pg/tls.js';
import { parseTableList } from './pg/table-names.js';
import { parseChecksFile, type NamedQuery } from './restore/checks-file.js';
import { parseAllowedSigners, unknownPrincipalProblem, type AllowedSigner } from './restore/allowed-signers.js';
import { readTemporalConnection, type TemporalConnection } from './temporal/connection.js';
import { readSecretFiles, SECRET_FILE_VARIABLES } from './secret-files.js';
import {
  parseMonthlyTime,
  parseTimeOfDay,
  parseWeeklyTime,
  type MonthlyTime,
  type TimeOfDay,
  type WeeklyTime,
} from './schedule-times.js';

/** A secret value: prints as its redacted form everywhere; `.reveal()` is the one way out. */
export class Secret {
  readonly #value: string;
  readonly #shown: string;

  constructor(value: string, shown = '***') {
    this.#value = value;
    this.#shown = shown;
  }

  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return this.#shown;
  }

  toJSON(): string {
    return this.#shown;
  }

  [inspect.custom](): string {
    return this.#shown;
  }
}

export interface ConfigIssue {
  variable: string;
  message: string;
}

/**
 * Every configuration problem found, at once. Retrying cannot fix configuration: activities
 * rethrow it as a non-retryable ApplicationFailure, and retry policies can also list the
 * type 'ConfigError' (the error's name) in nonRetryableErrorTypes.
 */
export class ConfigError extends Error {
  readonly issues: readonly ConfigIssue[];

  constructor(issues: readonly ConfigIssue[]) {
    const count = issues.length === 1 ? '1 problem' : `${issues.length} problems`;
    super(`Invalid configuration (${count}):\n` + issues.map((i) => `  ${i.variable}: ${i.message}`).join('\n'));
    this.name = 'ConfigError';
    this.issues = issues;
  }
}

/** LOCAL_RETENTION, S3_RETENTION: the S8 GFS tiers, or N days of every kind but manual (S7). */
export type RetentionSetting = { readonly kind: 'gfs' } | { readonly kind: 'days'; readonly days: number };

export interface Credentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: Secret;
}

/** Mirrors the SDK's ServerSideEncryption / SSEKMSKeyId parameters (S11). */
export type ServerSideEncryption =
  | { readonly serverSideEncryption: 'aws:kms'; readonly kmsKeyId: string }
  | { readonly serverSideEncryption: 'AES256' };

export interface Config {
  readonly env: string;
  readonly timeZone: string;
  readonly db: {
    readonly host: string;
    readonly port: number;
    readonly user: string;
    readonly password: Secret | undefined;
    /** Verbatim; pass it as PGDATABASE: pg_dump reads a `-d` value containing `=` as a conninfo string. */
    readonly database: string;
    readonly pgBinDir: string | undefined;
    /** DB_SSLMODE, DB_SSLROOTCERT, DB_SSLCERT, DB_SSLKEY. */
    readonly tls: PgTls;
  };
  readonly s3:
    | {
        readonly bucket: string;
        readonly prefix: string;
        readonly region: string;
        readonly endpointUrl: string | undefined;
        /** S3-compatible stores behind an endpoint URL rarely serve virtual-hosted buckets. */
        readonly forcePathStyle: boolean;
        readonly partSizeBytes: number;
        readonly sse: ServerSideEncryption;
        /** S3_OBJECT_LOCK_MODE: immutable objects (retain-until from S3_RETENTION, no overwrites); undefined: off. */
        readonly objectLock: ObjectLockMode | undefined;
        /** Undefined: the AWS SDK default credential chain. */
        readonly writer: Credentials | undefined;
        readonly reader: Credentials | undefined;
        readonly pruner: Credentials | undefined;
      }
    | undefined;
  /** The off-site copy (S8): a second S3 repository named `s3-copy`. */
  readonly s3Copy:
    | {
        readonly bucket: string;
        readonly prefix: string;
        readonly region: string;
        readonly endpointUrl: string | undefined;
        readonly forcePathStyle: boolean;
        readonly sse: ServerSideEncryption;
        /** Used for every role (the copy lives in another account); undefined: the SDK default chain. */
        readonly credentials: Credentials | undefined;
        /** S3_COPY_OBJECT_LOCK_MODE, as S3_OBJECT_LOCK_MODE. */
        readonly objectLock: ObjectLockMode | undefined;
      }
    | undefined;
  /** What Prune keeps (src/prune-policy.ts turns these into retention policies). */
  readonly prune: {
    readonly localRetention: RetentionSetting;
    /** For `s3` and `s3-copy`, and the bucket's lifecycle rules. */
    readonly s3Retention: RetentionSetting;
    readonly abandonedAfterMs: number;
  };
  readonly gpg:
    | {
        /** Backups are encrypted for this recipient (S12). */
        readonly encryption: { readonly recipient: string; readonly publicKeyFile: string } | undefined;
        /** Restores can decrypt (at most one of passphraseFile, passphrase is set). */
        readonly decryption:
          | {
              /** GPG_PRIVATE_KEY_FILE as given (resolved): a key file or a directory of key files. */
              readonly privateKeyFile: string;
              /** Every key file it names, each with its own `.passphrase` file when a directory holds one. */
              readonly keyFiles: readonly PrivateKeyFile[];
              readonly passphraseFile: string | undefined;
              readonly passphrase: Secret | undefined;
            }
          | undefined;
      }
    | undefined;
  readonly remote:
    | {
        readonly host: string;
        readonly port: number;
        readonly user: string;
        readonly dir: string;
        readonly privateKeyFile: string;
        /**
         * `fingerprint` is what the host must present (`SHA256:<base64>`, as ssh-keygen -l
         * prints it). `keyType` is known when a whole key was given: restrict the negotiated
         * host-key algorithm to it, or a server with several host keys may present another.
         */
        readonly hostKey: { readonly fingerprint: string; readonly keyType: string | undefined };
        /** Undefined: generations on the remote host are never pruned (S17). */
        readonly keepDays: number | undefined;
      }
    | undefined;
  readonly assets: { readonly provider: 'local'; readonly dir: string } | { readonly provider: 's3' | 'none' };
  readonly local: {
    readonly backupDir: string;
    readonly prefix: string;
    readonly backupFile: string | undefined;
    readonly globalsFile: string | undefined;
    readonly assetsFile: string | undefined;
  };
  readonly temporal: {
    readonly address: string;
    readonly namespace: string;
    readonly taskQueue: string;
    /** Address, namespace, TLS and credentials as the `temporal` CLI reads them (src/temporal/connection.ts). */
    readonly connection: TemporalConnection;
  };
  /** WORKER_SHUTDOWN_GRACE: how long a stopping worker lets activities in flight finish. */
  readonly worker: { readonly shutdownGraceMs: number };
  /** WORKER_HOST_ID: this worker process's host (its BACKUP_DIR), see src/host.ts. */
  readonly host: { readonly id: string };
  readonly backup: {
    readonly criticalTables: readonly { readonly schema: string; readonly table: string }[];
    readonly schemaVersionQuery: string | undefined;
    /** FINGERPRINT_QUERIES_FILE, parsed; undefined: every table and every numeric column. */
    readonly fingerprintTables: readonly FingerprintTable[] | undefined;
    /** DB_LOCK_TIMEOUT: the longest wait for a table lock in one attempt of a dump. */
    readonly lockTimeoutMs: number;
  };
  readonly restore: {
    readonly approvers: readonly { readonly name: string; readonly role: string }[];
    readonly approvalTimeoutMs: number;
    /** RESTORE_TARGET_DB, default DB_NAME. */
    readonly targetDatabase: string;
    /** RESTORE_JOBS: pg_restore --jobs; undefined: the cores, at most 8 (src/pg/restore.ts). */
    readonly jobs: number | undefined;
    /** RESTORE_ASSET_DIR, default ASSET_DIR when PDF_PROVIDER=local. */
    readonly assetDir: string | undefined;
    readonly smokeUrls: readonly string[];
    /** RESTORE_ALLOWED_SIGNERS_FILE, parsed at load time; the worker re-reads the file before every verification. */
    readonly allowedSigners: { readonly file: string; readonly signers: readonly AllowedSigner[] } | undefined;
  };
  readonly drill: {
    readonly preApproved: boolean;
    /** DRILL_ACCEPT_UNSIGNED_APPROVALS. */
    readonly acceptUnsignedApprovals: boolean;
    /** DRILL_DECRYPT_BEFORE_APPROVAL: a production Restore never decrypts before approval. */
    readonly decryptBeforeApproval: boolean;
    readonly latestDataQuery: string | undefined;
    /** DRILL_CHECKS_FILE, parsed at load time so a malformed file stops the worker at start. */
    readonly checks: { readonly file: string; readonly queries: readonly NamedQuery[] } | undefined;
    readonly smokeUrls: readonly string[];
    readonly batchResumeQuery: string | undefined;
    /** DRILL_DB_*: the separate PostgreSQL drills restore into; undefined: the production cluster. */
    readonly server: DrillServer | undefined;
  };
  readonly notify: { readonly webhookUrl: Secret | undefined };
  /** Wall-clock times in timeZone (src/temporal/schedules.ts turns them into Temporal Schedules). */
  readonly schedules: {
    readonly daily: TimeOfDay;
    readonly critical: TimeOfDay;
    readonly weeklyFull: WeeklyTime;
    readonly restoreDrill: MonthlyTime;
    readonly prune: TimeOfDay;
  };
  /** Thresholds of the freshness watchdog (src/freshness.ts). */
  readonly freshness: {
    readonly rpoDailyMs: number;
    readonly rpoCriticalMs: number;
    readonly drillMaxAgeMs: number;
    readonly offsiteMaxLagMs: number;
  };
  readonly metrics: { readonly bindAddress: string | undefined };
  /** The worker's log (src/telemetry.ts): Temporal's Runtime logger, the SDK's and ours. */
  readonly log: { readonly level: LogLevelSetting; readonly format: LogFormat };
}

export const LOG_LEVELS = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR'] as const;
export type LogLevelSetting = (typeof LOG_LEVELS)[number];
export const LOG_FORMATS = ['text', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];
export interface DrillServer {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: Secret | undefined;
  readonly tls: PgTls;
  /** DRILL_RESTORE_OWNERS: create the backup's roles and keep owners, or restore without owners and privileges. */
  readonly restoreOwners: 'apply-roles' | 'skip';
}

/** S3 Object Lock retention mode, as the S3 API spells it. */
export type ObjectLockMode = 'GOVERNANCE' | 'COMPLIANCE';

/** One file of GPG_PRIVATE_KEY_FILE and, in a directory, the `<name>.passphrase` file beside it. */
export interface PrivateKeyFile {
  readonly file: string;
  readonly passphraseFile: string | undefined;
}

/** A plain, printable copy of T with every Secret replaced by its redacted form. */
export type Redacted<T> = T extends Secret
  ? string
  : T extends readonly (infer U)[]
    ? Redacted<U>[]
    : T extends object
      ? { -readonly [K in keyof T]: Redacted<T[K]> }
      : T;

/** For printing and logging: secrets appear as `***` (Secret.toJSON does the replacing). */
export function redactedConfig(config: Config): Redacted<Config> {
  return JSON.parse(JSON.stringify(config)) as Redacted<Config>;
}

export const CONFIG_VARIABLES = [
  'BACKUP_ENV',
  'DB_HOST',
  'DB_PORT',
  'DB_USER',
  'DB_PASSWORD',
  'DB_NAME',
  'PG_BIN_DIR',
  'DB_SSLMODE',
  'DB_SSLROOTCERT',
  'DB_SSLCERT',
  'DB_SSLKEY',
  'S3_BUCKET',
  'S3_PREFIX',
  'S3_REGION',
  'S3_ENDPOINT_URL',
  'S3_PART_SIZE_MB',
  'SSE_KMS_KEY_ID',
  'SSE_S3',
  'S3_WRITER_ACCESS_KEY_ID',
  'S3_WRITER_SECRET_ACCESS_KEY',
  'S3_READER_ACCESS_KEY_ID',
  'S3_READER_SECRET_ACCESS_KEY',
  'S3_PRUNER_ACCESS_KEY_ID',
  'S3_PRUNER_SECRET_ACCESS_KEY',
  'S3_COPY_BUCKET',
  'S3_COPY_PREFIX',
  'S3_COPY_REGION',
  'S3_COPY_ENDPOINT_URL',
  'S3_COPY_SSE_KMS_KEY_ID',
  'S3_COPY_SSE_S3',
  'S3_COPY_ACCESS_KEY_ID',
  'S3_COPY_SECRET_ACCESS_KEY',
  'S3_OBJECT_LOCK_MODE',
  'S3_COPY_OBJECT_LOCK_MODE',
  'LOCAL_RETENTION',
  'S3_RETENTION',
  'PRUNE_ABANDONED_AFTER',
  'GPG_RECIPIENT',
  'GPG_PUBLIC_KEY_FILE',
  'GPG_PRIVATE_KEY_FILE',
  'GPG_PASSPHRASE_FILE',
  'GPG_PASSPHRASE',
  'REMOTE_HOST',
  'REMOTE_PORT',
  'REMOTE_USER',
  'REMOTE_DIR',
  'REMOTE_SSH_KEY',
  'REMOTE_HOST_KEY',
  'REMOTE_KEEP_DAYS',
  'PDF_PROVIDER',
  'ASSET_DIR',
  'BACKUP_DIR',
  'BACKUP_PREFIX',
  'BACKUP_FILE',
  'BACKUP_GLOBALS_FILE',
  'BACKUP_ASSETS_FILE',
  'TEMPORAL_ADDRESS',
  'TEMPORAL_NAMESPACE',
  'TEMPORAL_TASK_QUEUE',
  'TEMPORAL_API_KEY',
  'TEMPORAL_TLS',
  'TEMPORAL_TLS_CLIENT_CERT_PATH',
  'TEMPORAL_TLS_CLIENT_CERT_DATA',
  'TEMPORAL_TLS_CLIENT_KEY_PATH',
  'TEMPORAL_TLS_CLIENT_KEY_DATA',
  'TEMPORAL_TLS_SERVER_CA_CERT_PATH',
  'TEMPORAL_TLS_SERVER_CA_CERT_DATA',
  'TEMPORAL_TLS_SERVER_NAME',
  'TEMPORAL_TLS_DISABLE_HOST_VERIFICATION',
  'TEMPORAL_PROFILE',
  'TEMPORAL_CONFIG_FILE',
  'WORKER_SHUTDOWN_GRACE',
  'WORKER_HOST_ID',
  'CRITICAL_TABLES',
  'SCHEMA_VERSION_QUERY',
  'FINGERPRINT_QUERIES_FILE',
  'DB_LOCK_TIMEOUT',
  'NOTIFY_WEBHOOK_URL',
  'TIME_ZONE',
  'RESTORE_APPROVERS',
  'RESTORE_APPROVAL_TIMEOUT',
  'RESTORE_TARGET_DB',
  'RESTORE_JOBS',
  'RESTORE_ASSET_DIR',
  'RESTORE_SMOKE_URLS',
  'RESTORE_ALLOWED_SIGNERS_FILE',
  'DRILL_ACCEPT_UNSIGNED_APPROVALS',
  'DRILL_PREAPPROVED',
  'DRILL_DECRYPT_BEFORE_APPROVAL',
  'DRILL_LATEST_DATA_QUERY',
  'DRILL_CHECKS_FILE',
  'DRILL_SMOKE_URLS',
  'DRILL_BATCH_RESUME_QUERY',
  'DRILL_DB_HOST',
  'DRILL_DB_PORT',
  'DRILL_DB_USER',
  'DRILL_DB_PASSWORD',
  'DRILL_DB_SSLMODE',
  'DRILL_DB_SSLROOTCERT',
  'DRILL_DB_SSLCERT',
  'DRILL_DB_SSLKEY',
  'DRILL_RESTORE_OWNERS',
  'SCHEDULE_DAILY',
  'SCHEDULE_CRITICAL',
  'SCHEDULE_WEEKLY_FULL',
  'SCHEDULE_RESTORE_DRILL',
  'SCHEDULE_PRUNE',
  'RPO_DAILY',
  'RPO_CRITICAL',
  'DRILL_MAX_AGE',
  'OFFSITE_MAX_LAG',
  'METRICS_BIND_ADDRESS',
  'LOG_LEVEL',
  'LOG_FORMAT',
  ...SECRET_FILE_VARIABLES,
] as const;

type Variable = (typeof CONFIG_VARIABLES)[number];
type RawEnv = Partial<Record<Variable, string>>;

// ---------------------------------------------------------------------------------------------
// Field rules: one zod schema per variable. Messages read `what is wrong; expected ...`.

/** Echoes a (non-secret) bad value, shortened so a pasted blob does not flood the message. */
function show(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

const invalid = (expected: string) => ({
  error: (issue: { input?: unknown }) => `${show(issue.input)} is not valid; expected ${expected}`,
});

/** What is wrong with a value; a parser returns it instead of the parsed value. */
class Wrong {
  constructor(readonly what: string) {}
}

/** A required-unless-`.optional()` string, turned into T by `parse` or reported as `<what is wrong>; expected <expected>`. */
function parsed<T>(expected: string, parse: (value: string) => T | Wrong) {
  return z.string({ error: `not set; expected ${expected}` }).transform((value, ctx) => {
    const result = parse(value);
    if (!(result instanceof Wrong)) return result;
    ctx.addIssue({ code: 'custom', message: `${result.what}; expected ${expected}` });
    return z.NEVER;
  });
}

function integer(min: number, max: number, expected: string) {
  return z
    .string()
    .regex(/^\d+$/, invalid(expected))
    .transform(Number)
    .pipe(z.number().int().min(min, invalid(expected)).max(max, invalid(expected)));
}

const tcpPort = () => integer(1, 65535, 'a TCP port 1-65535');

const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const isHost = (value: string) => HOST_NAME.test(value) || net.isIP(value) !== 0;

function isTemporalAddress(value: string): boolean {
  const match = /^(\[[0-9A-Fa-f:.]+\]|[^:[\]]+):(\d{1,5})$/.exec(value);
  if (!match?.[1] || !match[2]) return false;
  const host = match[1].startsWith('[') ? match[1].slice(1, -1) : match[1];
  const port = Number(match[2]);
  return isHost(host) && port >= 1 && port <= 65535;
}

/** PostgreSQL silently truncates longer names (NAMEDATALEN 64): the backup would name another object. */
const postgresName = (value: string) => (Buffer.byteLength(value) > 63 ? new Wrong(`is ${Buffer.byteLength(value)} bytes long`) : value);

/** Characters a shell would interpret, and control characters such as NUL and newlines (S19). */
const UNSAFE_PATH_CHARACTER = /[;|&$`<>*?(){}[\]!'"\\\u0000-\u001f\u007f]/;

function unsafeCharacter(value: string): Wrong | undefined {
  const found = UNSAFE_PATH_CHARACTER.exec(value)?.[0];
  return found === undefined ? undefined : new Wrong(`contains ${show(found)}, a shell metacharacter or control character`);
}

const hasDotDotSegment = (value: string) => value.split('/').includes('..');

function isInside(candidate: string, dir: string): boolean {
  const relative = path.relative(dir, candidate);
  return relative !== '' && !relative.startsWith('..') && !path.isAbsolute(relative);
}

const BACKUP_PATH_EXPECTED = 'a file name or relative path inside BACKUP_DIR (or an absolute path inside it), without shell metacharacters';

/** `value` as an absolute path inside `backupDir`, or what is wrong with it (S19). */
function insideBackupDir(value: string, backupDir: string): string | Wrong {
  const unsafe = unsafeCharacter(value);
  if (unsafe) return unsafe;
  if (hasDotDotSegment(value)) return new Wrong(`${show(value)} contains a '..' segment`);
  const resolved = path.resolve(backupDir, value);
  if (!isInside(resolved, backupDir)) return new Wrong(`${show(value)} is outside BACKUP_DIR (${backupDir})`);
  let real: string;
  try {
    real = fs.realpathSync(resolved);
  } catch {
    return resolved; // not there (yet): no symbolic link to follow
  }
  return isInside(real, fs.realpathSync(backupDir))
    ? resolved
    : new Wrong(`${show(value)} leads through a symbolic link to ${real}, outside BACKUP_DIR`);
}

/**
 * The absolute path of a backup file named by `variable` (an environment variable or a CLI
 * option), refusing anything that leaves `backupDir`, also through a symbolic link (S19).
 */
export function resolveInsideBackupDir(variable: string, value: string, backupDir: string): string {
  const result = insideBackupDir(value, path.resolve(backupDir));
  if (result instanceof Wrong) throw new ConfigError([{ variable, message: `${result.what}; expected ${BACKUP_PATH_EXPECTED}` }]);
  return result;
}

function existingPath(absolute: string, kind: 'file' | 'directory'): string | Wrong {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(absolute);
  } catch {
    return new Wrong(`${absolute} does not exist`);
  }
  if (kind === 'file' ? !stat.isFile() : !stat.isDirectory()) return new Wrong(`${absolute} is not a ${kind}`);
  try {
    fs.accessSync(absolute, fs.constants.R_OK);
  } catch {
    return new Wrong(`${absolute} is not readable`);
  }
  return absolute;
}

/** An existing, readable file (a relative path resolves against the working directory). */
function readableFile(expected: string, mustContain?: { pattern: RegExp; what: string }) {
  return parsed(expected, (value) => {
    const file = existingPath(path.resolve(value), 'file');
    if (file instanceof Wrong || mustContain === undefined) return file;
    return mustContain.pattern.test(fs.readFileSync(file, 'utf8')) ? file : new Wrong(`${file} does not contain ${mustContain.what}`);
  });
}

/** A directory that is safe to hand to tools and is not the file-system root. */
function dedicatedDirectory(value: string, absolute: string): string | Wrong {
  return unsafeCharacter(value) ?? (absolute === path.parse(absolute).root ? new Wrong('is the file-system root') : absolute);
}

function pgBinDir(value: string): string | Wrong {
  const dir = existingPath(path.resolve(value), 'directory');
  if (dir instanceof Wrong) return dir;
  try {
    fs.accessSync(path.join(dir, 'pg_dump'), fs.constants.X_OK);
    return dir;
  } catch {
    return new Wrong(`${dir} holds no executable pg_dump: install the PostgreSQL client tools of the server's major version (Debian/Ubuntu: postgresql-client-<major>) and point PG_BIN_DIR at their directory`);
  }
}

function remoteDir(value: string): string | Wrong {
  if (!value.startsWith('/')) return new Wrong(`${show(value)} is not absolute`);
  if (hasDotDotSegment(value)) return new Wrong(`${show(value)} contains a '..' segment`);
  const normalized = path.posix.normalize(value).replace(/(?<=.)\/$/, '');
  return normalized === '/' ? new Wrong('is the root directory') : (unsafeCharacter(value) ?? normalized);
}

const S3_BUCKET_NAME =
  /^(?!\d+\.\d+\.\d+\.\d+$)(?!xn--|sthree-|amzn-s3-demo-)(?!.*(?:-s3alias|--ol-s3|\.mrap|--x-s3|--table-s3)$)(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const S3_PREFIX_SEGMENT = /^[A-Za-z0-9._-]+$/;
const KMS_KEY_ID =
  /^(?:alias\/[A-Za-z0-9/_-]+|arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(?:key|alias)\/[A-Za-z0-9/_-]+|(?:mrk-)?[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;

const s3Prefix = (value: string) =>
  value.split('/').every((segment) => S3_PREFIX_SEGMENT.test(segment) && segment !== '.' && segment !== '..')
    ? value
    : new Wrong(`${show(value)} is not valid`);

/** Any http(s) URL: z.httpUrl would also demand a dotted domain, refusing `http://minio:9000` and IP addresses. */
const httpUrl = (params: { error: string | ((issue: { input?: unknown }) => string) }) => z.url({ protocol: /^https?$/, ...params });

/** A secret is never echoed: its message says only what is wrong. */
const secret = (expected: string) =>
  z
    .string()
    .regex(/^\S+$/, { error: `contains white space; expected ${expected}` })
    .transform((value) => new Secret(value));

const accessKeyId = () => z.string().regex(/^[A-Za-z0-9+/=._-]{3,128}$/, invalid('an access key id such as AKIA...'));

/** A comma list whose items are parsed one by one; every bad or repeated item is reported. */
function commaList<T>(expected: string, parseItem: (item: string) => T | undefined, keyOf: (item: T) => string) {
  return z.string().transform((value, ctx) => {
    const items: T[] = [];
    const seen = new Set<string>();
    for (const text of value.split(',').map((part) => part.trim())) {
      const item = parseItem(text);
      if (item === undefined) {
        ctx.addIssue({ code: 'custom', message: `${show(text)} is not valid; expected ${expected}` });
      } else if (seen.has(keyOf(item))) {
        ctx.addIssue({ code: 'custom', message: `${show(text)} is listed twice; expected each once` });
      } else {
        seen.add(keyOf(item));
        items.push(item);
      }
    }
    return items;
  });
}

/** A comma list of http(s) URLs. */
function urlList(expected: string) {
  const parseUrl = (text: string) => {
    try {
      const url = new URL(text);
      return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : undefined;
    } catch {
      return undefined;
    }
  };
  return commaList(expected, parseUrl, (url) => url);
}

/** FINGERPRINT_QUERIES_FILE: read and parsed now, so a malformed file is reported with the variable. */
function fingerprintFile(value: string): FingerprintTable[] | Wrong {
  const file = existingPath(path.resolve(value), 'file');
  if (file instanceof Wrong) return file;
  try {
    return parseFingerprintSpec(fs.readFileSync(file, 'utf8'));
  } catch (error) {
    return new Wrong(`${file}: ${(error as Error).message}`);
  }
}

/** DRILL_CHECKS_FILE: read and parsed now, so a malformed file is reported with the variable. */
function checksFile(value: string): { file: string; queries: NamedQuery[] } | Wrong {
  const file = existingPath(path.resolve(value), 'file');
  if (file instanceof Wrong) return file;
  try {
    return { file, queries: parseChecksFile(fs.readFileSync(file, 'utf8')) };
  } catch (error) {
    return new Wrong(`${file}: ${(error as Error).message}`);
  }
}

/** RESTORE_ALLOWED_SIGNERS_FILE: read and parsed now; whether its names are approvers is checked with RESTORE_APPROVERS. */
function allowedSignersFile(value: string): { file: string; signers: AllowedSigner[] } | Wrong {
  const file = existingPath(path.resolve(value), 'file');
  if (file instanceof Wrong) return file;
  try {
    return { file, signers: parseAllowedSigners(fs.readFileSync(file, 'utf8')) };
  } catch (error) {
    return new Wrong(`${file}: ${(error as Error).message}`);
  }
}

/** CRITICAL_TABLES: every bad or repeated name is reported (src/pg/table-names.ts has the rules). */
function tableList(expected: string) {
  return z.string().transform((value, ctx) => {
    const { tables, problems } = parseTableList(value);
    for (const problem of problems) ctx.addIssue({ code: 'custom', message: `${problem}; expected ${expected}` });
    return tables;
  });
}

function parseApprover(text: string): { name: string; role: string } | undefined {
  const match = /^([A-Za-z0-9][A-Za-z0-9._@-]*):([a-z][a-z0-9_-]*)$/.exec(text);
  return match?.[1] && match[2] ? { name: match[1], role: match[2] } : undefined;
}

const RETENTION_EXPECTED = 'gfs (S8: 14 daily, 8 weekly, 12 monthly, critical 48 h) or a number of days such as 7d (1-36500)';

function retentionSetting(value: string): RetentionSetting | Wrong {
  if (value === 'gfs') return { kind: 'gfs' };
  const days = /^(\d{1,5})d$/.exec(value)?.[1];
  return days !== undefined && +days >= 1 && +days <= 36500 ? { kind: 'days', days: +days } : new Wrong(`${show(value)} is not valid`);
}

const MS_PER_UNIT = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1_000 } as const;

/** A parser of src/schedule-times.ts (which returns what is wrong as text) as a field parser. */
const wrongIfText =
  <T>(parse: (text: string) => T | string) =>
  (text: string): T | Wrong => {
    const result = parse(text);
    return typeof result === 'string' ? new Wrong(result) : result;
  };

/** `24h`, `30m`, `90s`, `1d12h` -> milliseconds. */
function duration(text: string): number | Wrong {
  const match = /^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(text);
  if (!match) return new Wrong(`${show(text)} is not valid`);
  const [, d = '0', h = '0', m = '0', s = '0'] = match;
  const ms = +d * MS_PER_UNIT.d + +h * MS_PER_UNIT.h + +m * MS_PER_UNIT.m + +s * MS_PER_UNIT.s;
  return ms > 0 && Number.isSafeInteger(ms) ? ms : new Wrong(`${show(text)} is not a positive duration`);
}

/** DB_LOCK_TIMEOUT: up to 24 h, well inside PostgreSQL's limit for lock_timeout (2^31 - 1 ms). */
function lockTimeout(text: string): number | Wrong {
  const ms = duration(text);
  return typeof ms === 'number' && ms > 24 * MS_PER_UNIT.h ? new Wrong(`${show(text)} is longer than 24h`) : ms;
}

/** The canonical IANA name (`asia/tokyo` -> `Asia/Tokyo`), as the ICU data of this Node knows it. */
function timeZone(name: string): string | Wrong {
  const unknown = new Wrong(`${show(name)} is not a known time zone`);
  if (!/^[A-Za-z_]+(?:\/[A-Za-z0-9_+-]+)*$/.test(name)) return unknown;
  try {
    return new Intl.DateTimeFormat('en-US', { timeZone: name }).resolvedOptions().timeZone;
  } catch {
    return unknown;
  }
}

/** `SHA256:<base64, no padding>` of an SSH public-key blob, as `ssh-keygen -l` prints it. */
export function sshHostKeyFingerprint(keyBlob: Uint8Array): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

const SSH_KEY_TYPE = /^(?:ssh-ed25519|ssh-rsa|ssh-dss|ecdsa-sha2-nistp(?:256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com)$/;

/** The type named inside an SSH public-key blob (a length-prefixed string), if well-formed. */
function blobKeyType(blob: Buffer): string | undefined {
  if (blob.length < 4) return undefined;
  const length = blob.readUInt32BE(0);
  return blob.length >= 4 + length ? blob.subarray(4, 4 + length).toString('latin1') : undefined;
}

interface HostKey {
  fingerprint: string;
  keyType: string | undefined;
}

/** A `SHA256:` fingerprint, an OpenSSH public-key line, or a known_hosts line. */
function hostKey(text: string): HostKey | Wrong {
  const fingerprint = /^SHA256:([A-Za-z0-9+/]{43})=?$/.exec(text);
  if (fingerprint?.[1]) return { fingerprint: `SHA256:${fingerprint[1]}`, keyType: undefined };
  const fields = text.trim().split(/\s+/);
  if (fields[0]?.startsWith('@')) return new Wrong(`has the known_hosts marker ${show(fields[0])}`);
  const typeIndex = fields.findIndex((field) => SSH_KEY_TYPE.test(field));
  // A public-key line starts with the key type; a known_hosts line has the host patterns first.
  if (typeIndex !== 0 && typeIndex !== 1) return new Wrong('is neither a SHA256: fingerprint nor a public-key or known_hosts line');
  const keyType = fields[typeIndex] as string;
  const base64 = fields[typeIndex + 1] ?? '';
  const blob = Buffer.from(base64, 'base64');
  if (base64 === '' || blob.toString('base64') !== base64 || blobKeyType(blob) !== keyType) {
    return new Wrong(`holds no valid ${keyType} key`);
  }
  return { fingerprint: sshHostKeyFingerprint(blob), keyType };
}

const PGP_PUBLIC_KEY = { pattern: /-----BEGIN PGP PUBLIC KEY BLOCK-----/, what: 'an ASCII-armoured public key (-----BEGIN PGP PUBLIC KEY BLOCK-----)' };
const PGP_PRIVATE_KEY = { pattern: /-----BEGIN PGP PRIVATE KEY BLOCK-----/, what: 'an ASCII-armoured private key (-----BEGIN PGP PRIVATE KEY BLOCK-----)' };
const SSH_PRIVATE_KEY = { pattern: /-----BEGIN (?:OPENSSH |RSA |EC |DSA )?PRIVATE KEY-----/, what: 'a private key (-----BEGIN OPENSSH PRIVATE KEY-----)' };

// PostgreSQL TLS files (DB_SSL*, DRILL_DB_SSL*): parsed now, so a wrong file stops the worker at start.

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** A PEM file of one or more certificates, each of which parses. */
function pemCertificates(value: string): string | Wrong {
  const file = existingPath(path.resolve(value), 'file');
  if (file instanceof Wrong) return file;
  const blocks = fs.readFileSync(file, 'utf8').match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) return new Wrong(`${file} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  for (const block of blocks) {
    try {
      new X509Certificate(block);
    } catch (error) {
      return new Wrong(`${file} holds a certificate that does not parse: ${(error as Error).message}`);
    }
  }
  return file;
}

/**
 * A PEM private key without a passphrase (libpq would prompt for one), which group and others
 * cannot read: libpq refuses such a key (0600 at most; 0640 when owned by root),
 * so node-pg must not quietly accept what pg_dump then refuses.
 */
function pemPrivateKey(value: string): string | Wrong {
  const file = existingPath(path.resolve(value), 'file');
  if (file instanceof Wrong) return file;
  const stat = fs.statSync(file);
  // libpq's own test: a root-owned key may be group-readable (a system-wide key read through a group).
  if ((stat.mode & (stat.uid === 0 ? 0o037 : 0o077)) !== 0) {
    return new Wrong(`${file} has group or world access (mode 0${(stat.mode & 0o777).toString(8)}); chmod 600 it (0640 at most when owned by root), as libpq demands`);
  }
  try {
    createPrivateKey(fs.readFileSync(file));
  } catch (error) {
    return new Wrong(`${file} holds no unencrypted PEM private key (${(error as Error).message})`);
  }
  return file;
}

const SSL_MODE_EXPECTED = `one of libpq's sslmode values: ${SSL_MODES.join(', ')}`;

const sslMode = () => z.enum(SSL_MODES, invalid(SSL_MODE_EXPECTED)).default(DEFAULT_SSL_MODE);
const sslRootCert = () => parsed("a PEM file of the CA certificate(s) that signed the server's certificate", pemCertificates).optional();
const sslCert = () => parsed('a PEM file of the client certificate', pemCertificates).optional();
const sslKey = () => parsed("a PEM file of the client certificate's private key, without a passphrase, mode 0600", pemPrivateKey).optional();

/** Both or neither of the client pair, a root certificate for the verifying modes, and a key that belongs to the certificate. */
function tlsIssues(raw: RawEnv, prefix: 'DB_' | 'DRILL_DB_'): ConfigIssue[] {
  const name = (suffix: string) => `${prefix}${suffix}` as Variable;
  const issues: ConfigIssue[] = [];
  const [mode, rootCert, cert, key] = [raw[name('SSLMODE')], raw[name('SSLROOTCERT')], raw[name('SSLCERT')], raw[name('SSLKEY')]];
  if (cert !== undefined && key === undefined) {
    issues.push({ variable: name('SSLKEY'), message: `not set, but ${name('SSLCERT')} is; expected the private key of that certificate (both or neither)` });
  }
  if (key !== undefined && cert === undefined) {
    issues.push({ variable: name('SSLCERT'), message: `not set, but ${name('SSLKEY')} is; expected the certificate of that key (both or neither)` });
  }
  if ((mode === 'verify-ca' || mode === 'verify-full') && rootCert === undefined) {
    issues.push({ variable: name('SSLROOTCERT'), message: `not set, but ${name('SSLMODE')} is ${mode}; expected the PEM file of the CA that signed the server's certificate` });
  }
  if (cert !== undefined && key !== undefined && !(pemCertificates(cert) instanceof Wrong) && !(pemPrivateKey(key) instanceof Wrong)) {
    const certificate = new X509Certificate(fs.readFileSync(path.resolve(cert), 'utf8').match(PEM_CERTIFICATE)![0]!);
    if (!certificate.checkPrivateKey(createPrivateKey(fs.readFileSync(path.resolve(key))))) {
      issues.push({ variable: name('SSLKEY'), message: `is not the private key of the certificate in ${name('SSLCERT')}; expected the key that belongs to it` });
    }
  }
  return issues;
}

const tlsSetting = (mode: SslMode, rootCertFile: string | undefined, certFile: string | undefined, keyFile: string | undefined): PgTls => ({
  mode,
  ...(rootCertFile !== undefined ? { rootCertFile } : {}),
  ...(certFile !== undefined && keyFile !== undefined ? { certFile, keyFile } : {}),
});

const objectLockMode = () =>
  z
    .enum(['governance', 'compliance'], invalid('governance or compliance (S3 Object Lock retention mode)'))
    .transform((mode): ObjectLockMode => (mode === 'governance' ? 'GOVERNANCE' : 'COMPLIANCE'));

const PRIVATE_KEY_SUFFIX = '.asc';
const PASSPHRASE_SUFFIX = '.passphrase';

/**
 * GPG_PRIVATE_KEY_FILE: one key file, or a directory of `*.asc` key files (key rotation: a
 * restore picks the key a backup was encrypted to). In a directory every `*.asc` file must hold
 * a private key (a stray public key is a mistake, not something to skip silently), and
 * `<name>.passphrase` beside `<name>.asc` is that key's passphrase.
 */
function privateKeyFiles(value: string): { path: string; files: PrivateKeyFile[] } | Wrong {
  const absolute = path.resolve(value);
  let isDirectory = false;
  try {
    isDirectory = fs.statSync(absolute).isDirectory();
  } catch {
    return new Wrong(`${absolute} does not exist`);
  }
  const holdsPrivateKey = (file: string) => PGP_PRIVATE_KEY.pattern.test(fs.readFileSync(file, 'utf8'));
  if (!isDirectory) {
    const file = existingPath(absolute, 'file');
    if (file instanceof Wrong) return file;
    return holdsPrivateKey(file) ? { path: file, files: [{ file, passphraseFile: undefined }] } : new Wrong(`${file} does not contain ${PGP_PRIVATE_KEY.what}`);
  }
  const dir = existingPath(absolute, 'directory');
  if (dir instanceof Wrong) return dir;
  const names = fs.readdirSync(dir).filter((name) => name.endsWith(PRIVATE_KEY_SUFFIX)).sort();
  if (names.length === 0) return new Wrong(`the directory ${dir} holds no usable private key (no *${PRIVATE_KEY_SUFFIX} file)`);
  const files: PrivateKeyFile[] = [];
  for (const name of names) {
    const file = existingPath(path.join(dir, name), 'file');
    if (file instanceof Wrong) return file;
    if (!holdsPrivateKey(file)) return new Wrong(`${file} in the directory does not contain ${PGP_PRIVATE_KEY.what}`);
    const ownPassphrase = path.join(dir, name.slice(0, -PRIVATE_KEY_SUFFIX.length) + PASSPHRASE_SUFFIX);
    const passphraseFile = fs.existsSync(ownPassphrase) ? existingPath(ownPassphrase, 'file') : undefined;
    if (passphraseFile instanceof Wrong) return passphraseFile;
    files.push({ file, passphraseFile });
  }
  return { path: dir, files };
}

/** One schema per variable; `backupDir` (BACKUP_DIR, resolved) is where BACKUP_*_FILE must stay. */
function envShape(backupDir: string) {
  const backupFile = () => parsed(BACKUP_PATH_EXPECTED, (value) => insideBackupDir(value, backupDir));
  return {
    BACKUP_ENV: z
      .string()
      .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, invalid("lower-case letters, digits and '-', starting with a letter or digit (e.g. poc, prod)"))
      .default('poc'),

    DB_HOST: z
      .string()
      .refine((value) => isHost(value) || path.posix.isAbsolute(value), invalid('a host name, an IP address or an absolute Unix-socket directory'))
      .default('localhost'),
    DB_PORT: tcpPort().default(5432),
    DB_USER: parsed('a PostgreSQL role name of at most 63 bytes', postgresName).default('postgres'),
    DB_PASSWORD: z.string().transform((value) => new Secret(value)).optional(),
    // Required by loadConfig for the commands that use the database (ConfigNeeds), not here.
    DB_NAME: parsed(DB_NAME_EXPECTED, postgresName).optional(),
    PG_BIN_DIR: parsed('the directory holding pg_dump, pg_dumpall, pg_restore and psql (e.g. /usr/lib/postgresql/15/bin)', pgBinDir).optional(),
    DB_SSLMODE: sslMode(),
    DB_SSLROOTCERT: sslRootCert(),
    DB_SSLCERT: sslCert(),
    DB_SSLKEY: sslKey(),

    S3_BUCKET: z
      .string()
      .regex(S3_BUCKET_NAME, invalid('an S3 bucket name: 3-63 lower-case letters, digits, dots and hyphens, starting and ending with a letter or digit'))
      .optional(),
    S3_PREFIX: parsed("'/'-separated segments of letters, digits, '.', '_' and '-', no leading or trailing '/', no '..' (e.g. erp4)", s3Prefix).default('erp4'),
    S3_REGION: z.string().regex(/^[a-z0-9]+(?:-[a-z0-9]+)*$/, invalid('a region name such as ap-northeast-1')).default('ap-northeast-1'),
    S3_ENDPOINT_URL: httpUrl(invalid('an http:// or https:// URL of an S3-compatible store')).optional(),
    S3_PART_SIZE_MB: integer(5, 5120, 'a part size in MiB, 5-5120').default(8),
    SSE_KMS_KEY_ID: z.string().regex(KMS_KEY_ID, invalid('a KMS key id, key ARN, alias name or alias ARN (e.g. alias/erp4-backup)')).optional(),
    SSE_S3: z.literal('AES256', invalid('AES256')).optional(),
    S3_WRITER_ACCESS_KEY_ID: accessKeyId().optional(),
    S3_WRITER_SECRET_ACCESS_KEY: secret('the secret access key of the write-only role').optional(),
    S3_READER_ACCESS_KEY_ID: accessKeyId().optional(),
    S3_READER_SECRET_ACCESS_KEY: secret('the secret access key of the read-only role').optional(),
    S3_PRUNER_ACCESS_KEY_ID: accessKeyId().optional(),
    S3_PRUNER_SECRET_ACCESS_KEY: secret('the secret access key of the pruning role').optional(),
    S3_COPY_BUCKET: z
      .string()
      .regex(S3_BUCKET_NAME, invalid('an S3 bucket name: 3-63 lower-case letters, digits, dots and hyphens, starting and ending with a letter or digit'))
      .optional(),
    S3_COPY_PREFIX: parsed("'/'-separated segments of letters, digits, '.', '_' and '-', no leading or trailing '/', no '..' (e.g. erp4)", s3Prefix).default('erp4'),
    S3_COPY_REGION: z.string().regex(/^[a-z0-9]+(?:-[a-z0-9]+)*$/, invalid('a region name such as ap-northeast-3')).default('ap-northeast-1'),
    S3_COPY_ENDPOINT_URL: httpUrl(invalid('an http:// or https:// URL of an S3-compatible store')).optional(),
    S3_COPY_SSE_KMS_KEY_ID: z.string().regex(KMS_KEY_ID, invalid('a KMS key id, key ARN, alias name or alias ARN of the copy\'s account')).optional(),
    S3_COPY_SSE_S3: z.literal('AES256', invalid('AES256')).optional(),
    S3_COPY_ACCESS_KEY_ID: accessKeyId().optional(),
    S3_COPY_SECRET_ACCESS_KEY: secret("the secret access key of the copy's account").optional(),
    LOCAL_RETENTION: parsed(RETENTION_EXPECTED, retentionSetting).default({ kind: 'days', days: 7 }),
    S3_RETENTION: parsed(RETENTION_EXPECTED, retentionSetting).default({ kind: 'gfs' }),
    PRUNE_ABANDONED_AFTER: parsed('a positive duration such as 24h or 2d', duration).default(24 * MS_PER_UNIT.h),

    GPG_RECIPIENT: z
      .string()
      .regex(/^[^\s-][^\u0000-\u001f\u007f]*$/, invalid('a user id, e-mail address or key fingerprint of the backup key'))
      .optional(),
    GPG_PUBLIC_KEY_FILE: readableFile('a readable file with the ASCII-armoured public key of GPG_RECIPIENT', PGP_PUBLIC_KEY).optional(),
    S3_OBJECT_LOCK_MODE: objectLockMode().optional(),
    S3_COPY_OBJECT_LOCK_MODE: objectLockMode().optional(),
    GPG_PRIVATE_KEY_FILE: parsed(
      'a readable file with the ASCII-armoured private key(s) that decrypt backups, or a directory of such *.asc files',
      privateKeyFiles,
    ).optional(),
    GPG_PASSPHRASE_FILE: readableFile("a readable file holding the private key's passphrase").optional(),
    GPG_PASSPHRASE: z.string().transform((value) => new Secret(value)).optional(),

    REMOTE_HOST: z.string().refine(isHost, invalid('a host name or an IP address')).optional(),
    REMOTE_PORT: tcpPort().default(22),
    REMOTE_USER: z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$/, invalid('a login name on REMOTE_HOST')).optional(),
    REMOTE_DIR: parsed('an absolute directory on REMOTE_HOST without shell metacharacters (e.g. /srv/backup/erp4)', remoteDir).optional(),
    REMOTE_SSH_KEY: readableFile('a readable private key file that logs in to REMOTE_HOST', SSH_PRIVATE_KEY).optional(),
    REMOTE_HOST_KEY: parsed(
      "REMOTE_HOST's public host key ('ssh-ed25519 AAAA...' or a known_hosts line) or its fingerprint 'SHA256:...' (run ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub on the host)",
      hostKey,
    ).optional(),
    REMOTE_KEEP_DAYS: integer(1, 36500, 'a whole number of days, at least 1').optional(),

    PDF_PROVIDER: z.enum(['local', 's3', 'none'], invalid('local, s3 or none')).default('none'),
    ASSET_DIR: parsed('the absolute path of the existing directory of PDF/attachment files', (value) =>
      path.isAbsolute(value) ? existingPath(path.normalize(value), 'directory') : new Wrong(`${show(value)} is not absolute`),
    ).optional(),

    BACKUP_DIR: parsed('a directory for local backups without shell metacharacters (e.g. /var/backups/erp4)', (value) =>
      dedicatedDirectory(value, path.resolve(value)),
    ).default(backupDir),
    BACKUP_PREFIX: parsed("1-64 letters, digits, '.', '_' or '-', starting with a letter or digit, without '..' (e.g. erp4)", (value) =>
      /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(value) && !value.includes('..')
        ? value
        : (unsafeCharacter(value) ?? new Wrong(`${show(value)} is not valid`)),
    ).default('erp4'),
    BACKUP_FILE: backupFile().optional(),
    BACKUP_GLOBALS_FILE: backupFile().optional(),
    BACKUP_ASSETS_FILE: backupFile().optional(),

    // No defaults here: unset, they come from the TEMPORAL_PROFILE profile, else the CLI's defaults.
    TEMPORAL_ADDRESS: z
      .string()
      .refine(isTemporalAddress, invalid('host:port of the Temporal frontend (e.g. 127.0.0.1:7233)'))
      .optional(),
    TEMPORAL_NAMESPACE: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/, invalid('a Temporal namespace name')).optional(),
    TEMPORAL_TASK_QUEUE: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$/, invalid('a task queue name (e.g. erp4-backup)'))
      .default('erp4-backup'),
    // Files, PEM contents, pairs and profiles are checked by readTemporalConnection (both env and TOML values).
    TEMPORAL_API_KEY: secret('the API key of the namespace (Temporal Cloud: Settings -> API keys)').optional(),
    TEMPORAL_TLS: z.enum(['true', 'false', '1', '0'], invalid('true or false')).optional(),
    TEMPORAL_TLS_CLIENT_CERT_PATH: z.string().optional(),
    TEMPORAL_TLS_CLIENT_CERT_DATA: z.string().optional(),
    TEMPORAL_TLS_CLIENT_KEY_PATH: z.string().optional(),
    TEMPORAL_TLS_CLIENT_KEY_DATA: z.string().transform((value) => new Secret(value)).optional(),
    TEMPORAL_TLS_SERVER_CA_CERT_PATH: z.string().optional(),
    TEMPORAL_TLS_SERVER_CA_CERT_DATA: z.string().optional(),
    TEMPORAL_TLS_SERVER_NAME: z.string().refine(isHost, invalid("a host name in the server's certificate (e.g. my-ns.a1b2c.tmprl.cloud)")).optional(),
    TEMPORAL_TLS_DISABLE_HOST_VERIFICATION: z.enum(['true', 'false', '1', '0'], invalid('false (or unset)')).optional(),
    TEMPORAL_PROFILE: z.string().optional(),
    TEMPORAL_CONFIG_FILE: z.string().optional(),
    WORKER_SHUTDOWN_GRACE: parsed('a positive duration such as 10m or 90s', duration).default(10 * MS_PER_UNIT.m),
    WORKER_HOST_ID: z
      .string()
      .regex(HOST_ID, invalid("1-100 letters, digits, '.', '_' or '-', starting with a letter or digit (e.g. backup-1)"))
      .default(defaultHostId(os.hostname(), backupDir)),

    CRITICAL_TABLES: tableList('table or schema.table, comma separated, as in SQL: lower-case or "Quoted" names (e.g. invoices,accounting.payments,"会計"."取引先")').default(
      () => [],
    ),
    SCHEMA_VERSION_QUERY: z.string().regex(/\S/, invalid('an SQL query returning one value')).optional(),
    FINGERPRINT_QUERIES_FILE: parsed('a readable JSON file: [{"table": "schema.table", "sums": ["column", ...]}, ...]', fingerprintFile).optional(),
    DB_LOCK_TIMEOUT: parsed('a duration of at most 24h such as 90s, 5m or 1h', lockTimeout).default(5 * MS_PER_UNIT.m),
    NOTIFY_WEBHOOK_URL: httpUrl({ error: 'is not an http:// or https:// URL; expected the webhook URL to notify' })
      .transform((value) => new Secret(value, `${new URL(value).origin}/***`))
      .optional(),
    TIME_ZONE: parsed('an IANA time zone such as Asia/Tokyo or UTC', timeZone).default('Asia/Tokyo'),
    RESTORE_APPROVERS: commaList('name:role pairs separated by commas (e.g. alice:admin,bob:management)', parseApprover, (a) => a.name).default(
      () => [],
    ),
    RESTORE_APPROVAL_TIMEOUT: parsed('a positive duration such as 90s, 30m, 24h or 1d12h', duration).default(24 * MS_PER_UNIT.h),
    RESTORE_TARGET_DB: parsed('the name of the database a production Restore creates, at most 63 bytes', postgresName).optional(),
    RESTORE_JOBS: integer(1, 64, 'a whole number of pg_restore jobs, 1-64').optional(),
    RESTORE_ASSET_DIR: parsed('the absolute directory a production Restore puts the PDF files into, without shell metacharacters', (value) =>
      path.isAbsolute(value) ? (unsafeCharacter(value) ?? path.normalize(value)) : new Wrong(`${show(value)} is not absolute`),
    ).optional(),
    RESTORE_SMOKE_URLS: urlList('http(s) URLs separated by commas (e.g. https://erp4.example.com/health)').default(() => []),
    RESTORE_ALLOWED_SIGNERS_FILE: parsed(
      'a readable OpenSSH allowed_signers file: one line per approver key, "name ssh-ed25519 AAAA..." (name from RESTORE_APPROVERS)',
      allowedSignersFile,
    ).optional(),
    DRILL_ACCEPT_UNSIGNED_APPROVALS: z
      .enum(['true', 'false', '1', '0'], invalid('true or false'))
      .transform((value) => value === 'true' || value === '1')
      .default(false),
    DRILL_PREAPPROVED: z
      .enum(['true', 'false', '1', '0'], invalid('true or false'))
      .transform((value) => value === 'true' || value === '1')
      .default(false),
    DRILL_DECRYPT_BEFORE_APPROVAL: z
      .enum(['true', 'false', '1', '0'], invalid('true or false'))
      .transform((value) => value === 'true' || value === '1')
      .default(true),
    DRILL_LATEST_DATA_QUERY: z.string().regex(/\S/, invalid('an SQL query returning the time of the newest row')).optional(),
    DRILL_CHECKS_FILE: parsed('a readable SQL file of "-- name: <name>" blocks, each a query returning one row with columns expected and actual', checksFile).optional(),
    DRILL_SMOKE_URLS: urlList('http(s) URLs separated by commas (e.g. http://drill-app:3000/health)').default(() => []),
    DRILL_BATCH_RESUME_QUERY: z.string().regex(/\S/, invalid('an SQL query returning one row per batch job with columns job and resumable')).optional(),
    DRILL_DB_HOST: z.string().refine(isHost, invalid('the host name or IP address of the PostgreSQL drills restore into')).optional(),
    DRILL_DB_PORT: tcpPort().default(5432),
    DRILL_DB_USER: parsed('a PostgreSQL role name of at most 63 bytes', postgresName).default('postgres'),
    DRILL_DB_PASSWORD: z.string().transform((value) => new Secret(value)).optional(),
    DRILL_DB_SSLMODE: sslMode(),
    DRILL_DB_SSLROOTCERT: sslRootCert(),
    DRILL_DB_SSLCERT: sslCert(),
    DRILL_DB_SSLKEY: sslKey(),
    DRILL_RESTORE_OWNERS: z.enum(['apply-roles', 'skip'], invalid('apply-roles (create the backup\'s roles on the drill server, keep owners) or skip (no owners, no privileges)')).default('apply-roles'),
    SCHEDULE_DAILY: parsed('a time HH:MM in TIME_ZONE (e.g. 02:00)', wrongIfText(parseTimeOfDay)).default({ hour: 2, minute: 0 }),
    SCHEDULE_CRITICAL: parsed('a time HH:MM in TIME_ZONE; the other three runs follow 6 h apart (e.g. 05:00)', wrongIfText(parseTimeOfDay)).default({
      hour: 5,
      minute: 0,
    }),
    SCHEDULE_WEEKLY_FULL: parsed('a day of the week and a time HH:MM (e.g. sun 03:00)', wrongIfText(parseWeeklyTime)).default({
      dayOfWeek: 'SUNDAY',
      hour: 3,
      minute: 0,
    }),
    SCHEDULE_RESTORE_DRILL: parsed('a day of the month 1-28 and a time HH:MM (e.g. 1 10:00)', wrongIfText(parseMonthlyTime)).default({
      dayOfMonth: 1,
      hour: 10,
      minute: 0,
    }),
    SCHEDULE_PRUNE: parsed('a time HH:MM in TIME_ZONE (e.g. 06:00)', wrongIfText(parseTimeOfDay)).default({ hour: 6, minute: 0 }),
    RPO_DAILY: parsed('a positive duration such as 24h or 1d', duration).default(24 * MS_PER_UNIT.h),
    RPO_CRITICAL: parsed('a positive duration such as 6h', duration).default(6 * MS_PER_UNIT.h),
    DRILL_MAX_AGE: parsed('a positive duration such as 35d', duration).default(35 * MS_PER_UNIT.d),
    OFFSITE_MAX_LAG: parsed('a positive duration such as 2h', duration).default(2 * MS_PER_UNIT.h),
    METRICS_BIND_ADDRESS: z
      .string()
      .refine(isTemporalAddress, invalid('host:port to serve Prometheus metrics on (e.g. 0.0.0.0:9464)'))
      .optional(),
    LOG_LEVEL: z.enum(LOG_LEVELS, invalid(LOG_LEVELS.join(', '))).default('INFO'),
    LOG_FORMAT: z.enum(LOG_FORMATS, invalid(LOG_FORMATS.join(' or '))).default('text'),
    // Read by readSecretFiles before this schema runs; the secrets they hold are checked above.
    ...Object.fromEntries(SECRET_FILE_VARIABLES.map((variable) => [variable, z.string().optional()])) as Record<(typeof SECRET_FILE_VARIABLES)[number], z.ZodOptional<z.ZodString>>,
  } satisfies Record<Variable, z.ZodType>;
}

// ---------------------------------------------------------------------------------------------
// Rules between variables, checked on what is set (so they hold even when a value is malformed).

/** [variable, the variable that needs it, what is expected]: REMOTE_HOST needs REMOTE_DIR (S18) ... */
const REQUIRED_WITH: readonly [Variable, Variable, string][] = [
  ['REMOTE_DIR', 'REMOTE_HOST', 'the absolute directory on REMOTE_HOST that receives the copies (S18)'],
  ['REMOTE_SSH_KEY', 'REMOTE_HOST', 'the private key file that logs in to REMOTE_HOST'],
  ['REMOTE_HOST_KEY', 'REMOTE_HOST', "REMOTE_HOST's public host key or its SHA256: fingerprint (an unknown host key is never accepted)"],
  ['GPG_PUBLIC_KEY_FILE', 'GPG_RECIPIENT', 'the ASCII-armoured public key file of GPG_RECIPIENT'],
  ['S3_WRITER_SECRET_ACCESS_KEY', 'S3_WRITER_ACCESS_KEY_ID', 'both of the pair or neither'],
  ['S3_WRITER_ACCESS_KEY_ID', 'S3_WRITER_SECRET_ACCESS_KEY', 'both of the pair or neither'],
  ['S3_READER_SECRET_ACCESS_KEY', 'S3_READER_ACCESS_KEY_ID', 'both of the pair or neither'],
  ['S3_READER_ACCESS_KEY_ID', 'S3_READER_SECRET_ACCESS_KEY', 'both of the pair or neither'],
  ['S3_PRUNER_SECRET_ACCESS_KEY', 'S3_PRUNER_ACCESS_KEY_ID', 'both of the pair or neither'],
  ['S3_PRUNER_ACCESS_KEY_ID', 'S3_PRUNER_SECRET_ACCESS_KEY', 'both of the pair or neither'],
  ['S3_COPY_SECRET_ACCESS_KEY', 'S3_COPY_ACCESS_KEY_ID', 'both of the pair or neither'],
  ['S3_COPY_ACCESS_KEY_ID', 'S3_COPY_SECRET_ACCESS_KEY', 'both of the pair or neither'],
];

const onlyWith = (enabler: Variable, variables: Variable[]) => variables.map((variable): [Variable, Variable] => [variable, enabler]);

/** [variable, the variable it only makes sense with]: a half-configured repository is a mistake, not a no-op. */
const ONLY_WITH: readonly [Variable, Variable][] = [
  ...onlyWith('S3_BUCKET', ['S3_PREFIX', 'S3_REGION', 'S3_ENDPOINT_URL', 'S3_PART_SIZE_MB', 'SSE_KMS_KEY_ID', 'SSE_S3']),
  ...onlyWith('S3_BUCKET', ['S3_WRITER_ACCESS_KEY_ID', 'S3_READER_ACCESS_KEY_ID', 'S3_PRUNER_ACCESS_KEY_ID']),
  ...onlyWith('S3_BUCKET', ['S3_COPY_BUCKET', 'S3_RETENTION']),
  ...onlyWith('S3_BUCKET', ['S3_OBJECT_LOCK_MODE']),
  ...onlyWith('S3_COPY_BUCKET', ['S3_COPY_OBJECT_LOCK_MODE']),
  ...onlyWith('S3_COPY_BUCKET', ['S3_COPY_PREFIX', 'S3_COPY_REGION', 'S3_COPY_ENDPOINT_URL', 'S3_COPY_SSE_KMS_KEY_ID', 'S3_COPY_SSE_S3', 'S3_COPY_ACCESS_KEY_ID']),
  ...onlyWith('REMOTE_HOST', ['REMOTE_PORT', 'REMOTE_USER', 'REMOTE_DIR', 'REMOTE_SSH_KEY', 'REMOTE_HOST_KEY', 'REMOTE_KEEP_DAYS']),
  ...onlyWith('GPG_RECIPIENT', ['GPG_PUBLIC_KEY_FILE']),
  ...onlyWith('GPG_PRIVATE_KEY_FILE', ['GPG_PASSPHRASE_FILE', 'GPG_PASSPHRASE']),
  ...onlyWith('DRILL_DB_HOST', ['DRILL_DB_PORT', 'DRILL_DB_USER', 'DRILL_DB_PASSWORD', 'DRILL_DB_SSLMODE', 'DRILL_DB_SSLROOTCERT', 'DRILL_DB_SSLCERT', 'DRILL_DB_SSLKEY', 'DRILL_RESTORE_OWNERS']),
];

function currentOsUser(env: NodeJS.ProcessEnv): string | undefined {
  try {
    return os.userInfo().username;
  } catch {
    // No passwd entry for this uid (some containers).
    return env.USER || env.LOGNAME || undefined;
  }
}

function crossVariableIssues(raw: RawEnv, env: NodeJS.ProcessEnv): ConfigIssue[] {
  const isSet = (variable: Variable) => raw[variable] !== undefined;
  const issues: ConfigIssue[] = [];
  for (const [variable, needer, expected] of REQUIRED_WITH) {
    if (isSet(needer) && !isSet(variable)) issues.push({ variable, message: `not set, but ${needer} is; expected ${expected}` });
  }
  for (const [variable, enabler] of ONLY_WITH) {
    if (isSet(variable) && !isSet(enabler)) {
      issues.push({ variable, message: `set, but ${enabler} is not; expected ${enabler} as well, or ${variable} unset` });
    }
  }
  if (isSet('S3_BUCKET') && !isSet('SSE_KMS_KEY_ID') && !isSet('SSE_S3')) {
    issues.push({
      variable: 'SSE_KMS_KEY_ID',
      message: 'S3_BUCKET is set without server-side encryption (S11); expected SSE_KMS_KEY_ID (e.g. alias/erp4-backup) or SSE_S3=AES256',
    });
  }
  if (isSet('SSE_KMS_KEY_ID') && isSet('SSE_S3')) {
    issues.push({ variable: 'SSE_S3', message: 'set together with SSE_KMS_KEY_ID; expected exactly one server-side encryption: SSE_KMS_KEY_ID or SSE_S3' });
  }
  if (isSet('S3_COPY_BUCKET') && !isSet('S3_COPY_SSE_KMS_KEY_ID') && !isSet('S3_COPY_SSE_S3')) {
    issues.push({
      variable: 'S3_COPY_SSE_KMS_KEY_ID',
      message: 'S3_COPY_BUCKET is set without server-side encryption (S11); expected S3_COPY_SSE_KMS_KEY_ID or S3_COPY_SSE_S3=AES256',
    });
  }
  if (isSet('S3_COPY_SSE_KMS_KEY_ID') && isSet('S3_COPY_SSE_S3')) {
    issues.push({
      variable: 'S3_COPY_SSE_S3',
      message: 'set together with S3_COPY_SSE_KMS_KEY_ID; expected exactly one server-side encryption: S3_COPY_SSE_KMS_KEY_ID or S3_COPY_SSE_S3',
    });
  }
  if (
    isSet('S3_COPY_BUCKET') &&
    raw.S3_COPY_BUCKET === raw.S3_BUCKET &&
    (raw.S3_COPY_PREFIX ?? 'erp4') === (raw.S3_PREFIX ?? 'erp4') &&
    raw.S3_COPY_ENDPOINT_URL === raw.S3_ENDPOINT_URL
  ) {
    issues.push({
      variable: 'S3_COPY_BUCKET',
      message: 'names the same bucket and prefix as S3_BUCKET and S3_PREFIX; expected another bucket (region, account) or at least another S3_COPY_PREFIX',
    });
  }
  if (isSet('GPG_PASSPHRASE') && isSet('GPG_PASSPHRASE_FILE')) {
    issues.push({ variable: 'GPG_PASSPHRASE', message: 'set together with GPG_PASSPHRASE_FILE; expected one of them' });
  }
  if (raw.PDF_PROVIDER === 'local' && !isSet('ASSET_DIR')) {
    issues.push({ variable: 'ASSET_DIR', message: 'not set, but PDF_PROVIDER is local; expected the directory of the PDF/attachment files (S2)' });
  }
  if (raw.PDF_PROVIDER !== 'local' && isSet('ASSET_DIR')) {
    issues.push({ variable: 'ASSET_DIR', message: 'set, but PDF_PROVIDER is not local; expected PDF_PROVIDER=local as well, or ASSET_DIR unset' });
  }
  issues.push(...tlsIssues(raw, 'DB_'), ...tlsIssues(raw, 'DRILL_DB_'));
  if (isSet('DRILL_DB_HOST') && raw.DRILL_DB_HOST === (raw.DB_HOST ?? 'localhost') && (raw.DRILL_DB_PORT ?? '5432') === (raw.DB_PORT ?? '5432')) {
    issues.push({ variable: 'DRILL_DB_HOST', message: 'names the production server (DB_HOST, DB_PORT); expected a separate PostgreSQL for drills, or DRILL_DB_HOST unset to drill on the production cluster' });
  }
  if (isSet('REMOTE_HOST') && !isSet('REMOTE_USER') && currentOsUser(env) === undefined) {
    issues.push({ variable: 'REMOTE_USER', message: 'not set and the current OS user is unknown; expected the login name on REMOTE_HOST' });
  }
  return issues;
}

// ---------------------------------------------------------------------------------------------

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

const credentials = (accessKeyId: string | undefined, secretAccessKey: Secret | undefined): Credentials | undefined =>
  accessKeyId !== undefined && secretAccessKey !== undefined ? { accessKeyId, secretAccessKey } : undefined;

const DB_NAME_EXPECTED = 'the name of the database to back up (S20), at most 63 bytes';

/** What a command needs beyond the settings every command reads; the repository, approval and schedule commands need no DB_NAME. */
export interface ConfigNeeds {
  /** DB_NAME is required (default true: the worker, backup, drill, restore, import). */
  database?: boolean;
}

/** Without DB_NAME, reading the database name fails naming it: a command that needs it after all says so. */
function databaseNameUnset(): never {
  throw new ConfigError([{ variable: 'DB_NAME', message: `not set; expected ${DB_NAME_EXPECTED}` }]);
}

export function loadConfig(given: NodeJS.ProcessEnv = process.env, needs: ConfigNeeds = {}): Config {
  // DB_PASSWORD_FILE and the other <secret>_FILE variables, read into their secrets first.
  const { env, issues: secretFileIssues } = readSecretFiles(given);
  const raw: RawEnv = {};
  for (const variable of CONFIG_VARIABLES) {
    const value = env[variable];
    if (value !== undefined && value !== '') raw[variable] = value;
  }

  const backupDir = path.resolve(raw.BACKUP_DIR ?? './backups');
  const parsed = z.object(envShape(backupDir)).safeParse(raw);
  const issues: ConfigIssue[] = parsed.success
    ? []
    : parsed.error.issues.map((issue) => ({ variable: String(issue.path[0]), message: issue.message }));
  issues.push(...crossVariableIssues(raw, env));
  issues.push(...secretFileIssues);
  if ((needs.database ?? true) && raw.DB_NAME === undefined) issues.push({ variable: 'DB_NAME', message: `not set; expected ${DB_NAME_EXPECTED}` });
  if (parsed.success && parsed.data.RESTORE_ALLOWED_SIGNERS_FILE) {
    const { file, signers } = parsed.data.RESTORE_ALLOWED_SIGNERS_FILE;
    const problem = unknownPrincipalProblem(signers, parsed.data.RESTORE_APPROVERS.map((a) => a.name));
    if (problem) issues.push({ variable: 'RESTORE_ALLOWED_SIGNERS_FILE', message: `${file}: ${problem}` });
  }
  const temporal = readTemporalConnection(env);
  issues.push(...temporal.issues);
  if (!parsed.success || issues.length > 0 || !temporal.connection) throw new ConfigError(issues);

  const v = parsed.data;
  const config: Config = {
    env: v.BACKUP_ENV,
    timeZone: v.TIME_ZONE,
    db: {
      host: v.DB_HOST,
      port: v.DB_PORT,
      user: v.DB_USER,
      password: v.DB_PASSWORD,
      // Unset only when the command does not need it: replaced by databaseNameUnset below.
      database: v.DB_NAME as string,
      pgBinDir: v.PG_BIN_DIR,
      tls: tlsSetting(v.DB_SSLMODE, v.DB_SSLROOTCERT, v.DB_SSLCERT, v.DB_SSLKEY),
    },
    s3:
      v.S3_BUCKET === undefined
        ? undefined
        : {
            bucket: v.S3_BUCKET,
            prefix: v.S3_PREFIX,
            region: v.S3_REGION,
            endpointUrl: v.S3_ENDPOINT_URL,
            forcePathStyle: v.S3_ENDPOINT_URL !== undefined,
            partSizeBytes: v.S3_PART_SIZE_MB * 1024 * 1024,
            sse:
              v.SSE_KMS_KEY_ID !== undefined
                ? { serverSideEncryption: 'aws:kms', kmsKeyId: v.SSE_KMS_KEY_ID }
                : { serverSideEncryption: 'AES256' },
            writer: credentials(v.S3_WRITER_ACCESS_KEY_ID, v.S3_WRITER_SECRET_ACCESS_KEY),
            reader: credentials(v.S3_READER_ACCESS_KEY_ID, v.S3_READER_SECRET_ACCESS_KEY),
            pruner: credentials(v.S3_PRUNER_ACCESS_KEY_ID, v.S3_PRUNER_SECRET_ACCESS_KEY),
            objectLock: v.S3_OBJECT_LOCK_MODE,
          },
    s3Copy:
      v.S3_COPY_BUCKET === undefined
        ? undefined
        : {
            bucket: v.S3_COPY_BUCKET,
            prefix: v.S3_COPY_PREFIX,
            region: v.S3_COPY_REGION,
            endpointUrl: v.S3_COPY_ENDPOINT_URL,
            forcePathStyle: v.S3_COPY_ENDPOINT_URL !== undefined,
            sse:
              v.S3_COPY_SSE_KMS_KEY_ID !== undefined
                ? { serverSideEncryption: 'aws:kms', kmsKeyId: v.S3_COPY_SSE_KMS_KEY_ID }
                : { serverSideEncryption: 'AES256' },
            credentials: credentials(v.S3_COPY_ACCESS_KEY_ID, v.S3_COPY_SECRET_ACCESS_KEY),
            objectLock: v.S3_COPY_OBJECT_LOCK_MODE,
          },
    prune: { localRetention: v.LOCAL_RETENTION, s3Retention: v.S3_RETENTION, abandonedAfterMs: v.PRUNE_ABANDONED_AFTER },
    gpg:
      v.GPG_RECIPIENT === undefined && v.GPG_PRIVATE_KEY_FILE === undefined
        ? undefined
        : {
            encryption:
              v.GPG_RECIPIENT === undefined ? undefined : { recipient: v.GPG_RECIPIENT, publicKeyFile: v.GPG_PUBLIC_KEY_FILE as string },
            decryption:
              v.GPG_PRIVATE_KEY_FILE === undefined
                ? undefined
                : {
                    privateKeyFile: v.GPG_PRIVATE_KEY_FILE.path,
                    keyFiles: v.GPG_PRIVATE_KEY_FILE.files,
                    passphraseFile: v.GPG_PASSPHRASE_FILE,
                    passphrase: v.GPG_PASSPHRASE,
                  },
          },
    remote:
      v.REMOTE_HOST === undefined
        ? undefined
        : {
            host: v.REMOTE_HOST,
            port: v.REMOTE_PORT,
            user: v.REMOTE_USER ?? (currentOsUser(env) as string),
            dir: v.REMOTE_DIR as string,
            privateKeyFile: v.REMOTE_SSH_KEY as string,
            hostKey: v.REMOTE_HOST_KEY as HostKey,
            keepDays: v.REMOTE_KEEP_DAYS,
          },
    assets: v.PDF_PROVIDER === 'local' ? { provider: 'local', dir: v.ASSET_DIR as string } : { provider: v.PDF_PROVIDER },
    local: {
      backupDir: v.BACKUP_DIR,
      prefix: v.BACKUP_PREFIX,
      backupFile: v.BACKUP_FILE,
      globalsFile: v.BACKUP_GLOBALS_FILE,
      assetsFile: v.BACKUP_ASSETS_FILE,
    },
    temporal: {
      address: temporal.connection.address,
      namespace: temporal.connection.namespace,
      taskQueue: v.TEMPORAL_TASK_QUEUE,
      connection: temporal.connection,
    },
    host: { id: v.WORKER_HOST_ID },
    backup: {
      criticalTables: v.CRITICAL_TABLES,
      schemaVersionQuery: v.SCHEMA_VERSION_QUERY,
      fingerprintTables: v.FINGERPRINT_QUERIES_FILE,
      lockTimeoutMs: v.DB_LOCK_TIMEOUT,
    },
    restore: {
      approvers: v.RESTORE_APPROVERS,
      approvalTimeoutMs: v.RESTORE_APPROVAL_TIMEOUT,
      targetDatabase: (v.RESTORE_TARGET_DB ?? v.DB_NAME) as string,
      jobs: v.RESTORE_JOBS,
      assetDir: v.RESTORE_ASSET_DIR ?? (v.PDF_PROVIDER === 'local' ? v.ASSET_DIR : undefined),
      smokeUrls: v.RESTORE_SMOKE_URLS,
      allowedSigners: v.RESTORE_ALLOWED_SIGNERS_FILE,
    },
    drill: {
      preApproved: v.DRILL_PREAPPROVED,
      acceptUnsignedApprovals: v.DRILL_ACCEPT_UNSIGNED_APPROVALS,
      decryptBeforeApproval: v.DRILL_DECRYPT_BEFORE_APPROVAL,
      latestDataQuery: v.DRILL_LATEST_DATA_QUERY,
      checks: v.DRILL_CHECKS_FILE,
      smokeUrls: v.DRILL_SMOKE_URLS,
      batchResumeQuery: v.DRILL_BATCH_RESUME_QUERY,
      server:
        v.DRILL_DB_HOST === undefined
          ? undefined
          : {
              host: v.DRILL_DB_HOST,
              port: v.DRILL_DB_PORT,
              user: v.DRILL_DB_USER,
              password: v.DRILL_DB_PASSWORD,
              tls: tlsSetting(v.DRILL_DB_SSLMODE, v.DRILL_DB_SSLROOTCERT, v.DRILL_DB_SSLCERT, v.DRILL_DB_SSLKEY),
              restoreOwners: v.DRILL_RESTORE_OWNERS,
            },
    },
    notify: { webhookUrl: v.NOTIFY_WEBHOOK_URL },
    schedules: {
      daily: v.SCHEDULE_DAILY,
      critical: v.SCHEDULE_CRITICAL,
      weeklyFull: v.SCHEDULE_WEEKLY_FULL,
      restoreDrill: v.SCHEDULE_RESTORE_DRILL,
      prune: v.SCHEDULE_PRUNE,
    },
    freshness: { rpoDailyMs: v.RPO_DAILY, rpoCriticalMs: v.RPO_CRITICAL, drillMaxAgeMs: v.DRILL_MAX_AGE, offsiteMaxLagMs: v.OFFSITE_MAX_LAG },
    metrics: { bindAddress: v.METRICS_BIND_ADDRESS },
    log: { level: v.LOG_LEVEL, format: v.LOG_FORMAT },
    worker: { shutdownGraceMs: v.WORKER_SHUTDOWN_GRACE },
  };
  if (v.DB_NAME === undefined) {
    // Not enumerable: JSON (redactedConfig) and deepFreeze do not read them.
    Object.defineProperty(config.db, 'database', { get: databaseNameUnset, enumerable: false });
    if (v.RESTORE_TARGET_DB === undefined) Object.defineProperty(config.restore, 'targetDatabase', { get: databaseNameUnset, enumerable: false });
  }
  return deepFreeze(config);
}
