#!/usr/bin/env node
import { createReadStream } from 'node:fs';
import { basename } from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';

/**
 * Baseline A's uploader: what an operator's `aws s3 cp --sse aws:kms` does, written with the
 * SDK's own multipart helper at its defaults (5 MiB parts, 4 in flight), one file after another.
 *
 *   BENCH_S3_ENDPOINT=... BENCH_S3_BUCKET=... BENCH_S3_PREFIX=... node dist/bench/upload-s3.js FILE...
 *
 * Credentials and region come from the SDK's default chain (AWS_ACCESS_KEY_ID, AWS_REGION, ...).
 */
function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

async function main(files: string[]): Promise<void> {
  if (files.length === 0) throw new Error('usage: upload-s3.js FILE...');
  const client = new S3Client({
    endpoint: required('BENCH_S3_ENDPOINT'),
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const bucket = required('BENCH_S3_BUCKET');
  const prefix = required('BENCH_S3_PREFIX');
  try {
    for (const file of files) {
      await new Upload({
        client,
        params: {
          Bucket: bucket,
          Key: `${prefix}/${basename(file)}`,
          Body: createReadStream(file),
          ServerSideEncryption: 'aws:kms',
          SSEKMSKeyId: process.env.BENCH_SSE_KMS_KEY_ID ?? 'alias/erp4-backup',
        },
      }).done();
    }
  } finally {
    client.destroy();
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(`upload-s3: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
