#!/usr/bin/env node
import { basename } from 'node:path';
import { plainS3Client, plainUpload, requiredEnv } from './plain-s3.js';

/**
 * Baseline A's uploader: what an operator's `aws s3 cp --sse aws:kms` does, written with the
 * SDK's own multipart helper at its defaults (5 MiB parts, 4 in flight), one file after another.
 *
 *   BENCH_S3_ENDPOINT=... BENCH_S3_BUCKET=... BENCH_S3_PREFIX=... node dist/bench/upload-s3.js FILE...
 *
 * Credentials and region come from the SDK's default chain (AWS_ACCESS_KEY_ID, AWS_REGION, ...).
 */
async function main(files: string[]): Promise<void> {
  if (files.length === 0) throw new Error('usage: upload-s3.js FILE...');
  const client = plainS3Client(requiredEnv('BENCH_S3_ENDPOINT'));
  const bucket = requiredEnv('BENCH_S3_BUCKET');
  const prefix = requiredEnv('BENCH_S3_PREFIX');
  try {
    for (const file of files) {
      await plainUpload(client, bucket, `${prefix}/${basename(file)}`, file, process.env.BENCH_SSE_KMS_KEY_ID ?? 'alias/erp4-backup');
    }
  } finally {
    client.destroy();
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(`upload-s3: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
