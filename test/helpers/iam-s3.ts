import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { loadToolPaths } from '../../src/tools.js';
import { createTestBucket, startS3Server, type S3Server } from './s3-server.js';
import type { Services } from './services.js';

/**
 * A private moto server that enforces IAM (the shared one accepts any credentials), with one
 * user per policy of deploy/iam/ rendered for one bucket, prefix and env: the product's
 * S3_WRITER_*, S3_READER_*, S3_PRUNER_* and S3_COPY_* exactly as production gives them (the
 * off-site copy lives in the same bucket under its own prefix here). moto evaluates Action,
 * Resource and Effect, not S3 condition keys.
 */
const PRODUCT_ROLES = ['writer', 'reader', 'pruner'] as const;
export type IamRole = (typeof PRODUCT_ROLES)[number] | 'offsite-copy';

export interface IamS3 {
  server: S3Server;
  bucket: string;
  keys: Record<IamRole, { accessKeyId: string; secretAccessKey: string }>;
  /** S3_* settings of the product for this server, every role with its own user's keys. */
  env: Record<string, string>;
  /** S3_COPY_* settings: the off-site copy under `copyPrefix`, with the offsite-copy role's keys. */
  copyEnv: Record<string, string>;
  stop(): Promise<void>;
}

const root = resolve(import.meta.dirname, '../..');

function renderPolicy(role: IamRole, values: Record<string, string>): string {
  const template = readFileSync(join(root, 'deploy', 'iam', `${role}.json`), 'utf8');
  return template.replace(/\$\{([A-Z0-9_]+)\}/g, (whole, name: string) => {
    const value = values[name];
    if (value === undefined) throw new Error(`deploy/iam/${role}.json uses a placeholder this helper does not fill: ${whole}`);
    return value;
  });
}

/** Users made with boto3 from the tools venv (moto's own dependency; the project has no IAM client), one per role with its policy; their access keys. */
export async function createIamUsers(endpoint: string, motoServerPath: string, policies: Record<IamRole, string>): Promise<IamS3['keys']> {
  const script = `
import boto3, json, sys
request = json.load(sys.stdin)
iam = boto3.client('iam', endpoint_url=request['endpoint'], region_name='us-east-1', aws_access_key_id='test', aws_secret_access_key='test')
keys = {}
for role, policy in request['policies'].items():
    user = 'erp4-backup-' + role
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName=user, PolicyDocument=policy)
    key = iam.create_access_key(UserName=user)['AccessKey']
    keys[role] = {'accessKeyId': key['AccessKeyId'], 'secretAccessKey': key['SecretAccessKey']}
print(json.dumps(keys))
`;
  const child = promisify(execFile)(join(dirname(motoServerPath), 'python'), ['-c', script]);
  child.child.stdin?.end(JSON.stringify({ endpoint, policies }));
  return JSON.parse((await child).stdout) as IamS3['keys'];
}

export async function startIamS3(s: Services, options: { name: string; bucket: string; prefix: string; copyPrefix: string; env: string }): Promise<IamS3> {
  const { motoServerPath } = loadToolPaths();
  const server = await startS3Server({ motoServerPath, logPath: join(s.workDir, 'logs', `${options.name}.log`) });
  try {
    await createTestBucket(server, options.bucket);
    const kmsKeyArn = 'arn:aws:kms:ap-northeast-1:123456789012:key/11111111-2222-3333-4444-555555555555';
    const values = {
      S3_BUCKET: options.bucket,
      S3_PREFIX: options.prefix,
      BACKUP_ENV: options.env,
      SSE_KMS_KEY_ARN: kmsKeyArn,
      S3_COPY_BUCKET: options.bucket,
      S3_COPY_PREFIX: options.copyPrefix,
      S3_COPY_SSE_KMS_KEY_ARN: kmsKeyArn,
    };
    const keys = await createIamUsers(server.endpoint, motoServerPath, {
      writer: renderPolicy('writer', values),
      reader: renderPolicy('reader', values),
      pruner: renderPolicy('pruner', values),
      'offsite-copy': renderPolicy('offsite-copy', values),
    });
    // From here on every request must be signed by a user whose policies allow it.
    const response = await fetch(`${server.endpoint}/moto-api/reset-auth`, { method: 'POST', body: '0' });
    if (!response.ok) throw new Error(`moto refused to enforce IAM: HTTP ${response.status}`);
    const env: Record<string, string> = {
      S3_BUCKET: options.bucket,
      S3_PREFIX: options.prefix,
      S3_REGION: server.region,
      S3_ENDPOINT_URL: server.endpoint,
      SSE_KMS_KEY_ID: 'alias/erp4-backup',
    };
    for (const role of PRODUCT_ROLES) {
      env[`S3_${role.toUpperCase()}_ACCESS_KEY_ID`] = keys[role].accessKeyId;
      env[`S3_${role.toUpperCase()}_SECRET_ACCESS_KEY`] = keys[role].secretAccessKey;
    }
    const copyEnv = {
      S3_COPY_BUCKET: options.bucket,
      S3_COPY_PREFIX: options.copyPrefix,
      S3_COPY_REGION: server.region,
      S3_COPY_ENDPOINT_URL: server.endpoint,
      S3_COPY_SSE_KMS_KEY_ID: 'alias/erp4-backup',
      S3_COPY_ACCESS_KEY_ID: keys['offsite-copy'].accessKeyId,
      S3_COPY_SECRET_ACCESS_KEY: keys['offsite-copy'].secretAccessKey,
    };
    return { server, bucket: options.bucket, keys, env, copyEnv, stop: () => server.stop() };
  } catch (error) {
    await server.stop();
    throw error;
  }
}
