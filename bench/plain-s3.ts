import { createReadStream, createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';

/**
 * S3 as an operator's script uses it (`aws s3 cp`): the SDK at its defaults, what the product's
 * S3 repository is measured against. Credentials and region come from the SDK's default chain
 * (AWS_ACCESS_KEY_ID, AWS_REGION, ...); only the endpoint of the S3-compatible test server is given.
 */
export function plainS3Client(endpoint: string): S3Client {
  return new S3Client({
    endpoint,
    forcePathStyle: true,
    // moto does not check the SDK's default CRC32 checksums; asked for only where required, as the product does.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/** lib-storage's multipart helper at its defaults (5 MiB parts, 4 in flight), SSE-KMS like the product's puts; `file` a path or the bytes. */
export async function plainUpload(client: S3Client, bucket: string, key: string, file: string | Uint8Array, kmsKeyId: string): Promise<void> {
  const body = typeof file === 'string' ? createReadStream(file) : file;
  await new Upload({
    client,
    params: { Bucket: bucket, Key: key, Body: body, ServerSideEncryption: 'aws:kms', SSEKMSKeyId: kmsKeyId },
  }).done();
}

/** GetObject streamed to a file. */
export async function plainDownload(client: S3Client, bucket: string, key: string, file: string): Promise<void> {
  const response = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  if (!response.Body) throw new Error(`s3://${bucket}/${key} has no body`);
  await pipeline(response.Body as Readable, createWriteStream(file));
}

export function requiredEnv(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}
