#!/usr/bin/env node
import { plainDownload, plainS3Client, requiredEnv } from './plain-s3.js';

/**
 * Baseline B's downloader: what an operator's `aws s3 cp s3://... FILE` does, the SDK at its
 * defaults, one object after another.
 *
 *   BENCH_S3_ENDPOINT=... BENCH_S3_BUCKET=... node dist/bench/download-s3.js KEY=FILE...
 *
 * Credentials and region come from the SDK's default chain (AWS_ACCESS_KEY_ID, AWS_REGION, ...).
 */
async function main(pairs: string[]): Promise<void> {
  if (pairs.length === 0 || pairs.some((pair) => !/^[^=]+=[^=]+$/.test(pair))) throw new Error('usage: download-s3.js KEY=FILE...');
  const client = plainS3Client(requiredEnv('BENCH_S3_ENDPOINT'));
  const bucket = requiredEnv('BENCH_S3_BUCKET');
  try {
    for (const pair of pairs) {
      const [key, file] = pair.split('=') as [string, string];
      await plainDownload(client, bucket, key, file);
    }
  } finally {
    client.destroy();
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(`download-s3: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
