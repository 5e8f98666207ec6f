#!/usr/bin/env node
import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import { loadConfig } from '../src/config.js';
import { openRepository } from '../src/repositories.js';
import { plainS3Client, plainUpload, requiredEnv } from './plain-s3.js';

/**
 * The S3-overhead measurement: the product's S3 repository (putFile, opened from the worker's own
 * environment with the writer role, as the worker opens it) against a plain lib-storage Upload at
 * the SDK's defaults, of the same file to the same server, back to back, `pairs` times with the
 * order alternating (so neither always runs on a warmer server), after one untimed small put by
 * each (connections opened, code loaded: the first put of a process is not what a backup's
 * uploads cost). Each object is deleted after its upload (moto keeps them in memory). Only the
 * put itself is timed, in this one process.
 *
 *   <the worker's environment> BENCH_S3_ENDPOINT=... AWS_ACCESS_KEY_ID=... node dist/bench/s3-overhead.js FILE SIZE SHA256 PAIRS
 *
 * Prints {"oursMs":[...],"plainMs":[...]} on stdout.
 */
async function main([file, size, sha256, pairs]: string[]): Promise<void> {
  if (!file || !size || !sha256 || !pairs) throw new Error('usage: s3-overhead.js FILE SIZE SHA256 PAIRS');
  const config = loadConfig(process.env);
  const ours = openRepository(config, 'writer', 's3');
  if (!ours || !config.s3) throw new Error('S3_BUCKET is not set: the worker environment has no S3 repository');
  const bucket = config.s3.bucket;
  const objectKey = (key: string) => (config.s3!.prefix ? `${config.s3!.prefix}/${key}` : key);
  const kmsKeyId = config.s3.sse.serverSideEncryption === 'aws:kms' ? config.s3.sse.kmsKeyId : undefined;
  if (!kmsKeyId) throw new Error('the benchmark compares SSE-KMS puts: set SSE_KMS_KEY_ID');
  const plain = plainS3Client(requiredEnv('BENCH_S3_ENDPOINT'));
  const oursMs: number[] = [];
  const plainMs: number[] = [];
  const timed = async (put: () => Promise<void>): Promise<number> => {
    const started = performance.now();
    await put();
    return performance.now() - started;
  };
  try {
    const warmUp = Buffer.alloc(64 * 1024, 1);
    await ours.putBytes('bench-overhead/warm-up-ours', warmUp);
    await plainUpload(plain, bucket, objectKey('bench-overhead/warm-up-plain'), warmUp, kmsKeyId);
    for (const key of ['bench-overhead/warm-up-ours', 'bench-overhead/warm-up-plain']) {
      await plain.send(new DeleteObjectCommand({ Bucket: bucket, Key: objectKey(key) }));
    }
    for (let pair = 0; pair < Number(pairs); pair++) {
      const runOurs = async () => {
        const key = `bench-overhead/ours-${pair}`;
        oursMs.push(await timed(() => ours.putFile(key, file, { expected: { size: Number(size), sha256 }, metadata: { env: config.env, generated_at: new Date().toISOString(), schema_version: 'bench' } })));
        await plain.send(new DeleteObjectCommand({ Bucket: bucket, Key: objectKey(key) }));
      };
      const runPlain = async () => {
        const key = objectKey(`bench-overhead/plain-${pair}`);
        plainMs.push(await timed(() => plainUpload(plain, bucket, key, file, kmsKeyId)));
        await plain.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
      };
      for (const run of pair % 2 === 0 ? [runOurs, runPlain] : [runPlain, runOurs]) await run();
    }
  } finally {
    await ours.close();
    plain.destroy();
  }
  process.stdout.write(`${JSON.stringify({ oursMs, plainMs })}\n`);
}

main(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(`s3-overhead: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
