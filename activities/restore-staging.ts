import { ApplicationFailure } from '@temporalio/common';
import { createReadStream } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { ArtifactName } from '../src/layout.js';
import type { ArtifactSummary } from '../src/restore/report.js';
import { writeFileAtomically } from '../src/storage/atomic-file.js';
import type { Digest } from '../src/storage/hash.js';
import { ObjectNotFoundError, type Repository } from '../src/storage/repository.js';

/**
 * The files of one restore run on the worker's disk, under `${stagingRoot}/restore-<run id>/`:
 *
 *   <artifact>.stored   the bytes as the repository holds them; present ONLY once their size and
 *                       sha256 matched the manifest (downloaded under a temporary name, renamed
 *                       after the check), so nothing unverified is ever restored
 *   <artifact>.plain    the decrypted bytes (OpenPGP artifacts only; else .stored is the plaintext):
 *                       either decrypted from a verified .stored, or in one streaming pass
 *                       (restore-stream.ts) and renamed into place only once the stored bytes'
 *                       size and sha256 matched the manifest
 *
 * Every step can be repeated: a retry on another worker, or after the files were lost, fetches
 * and verifies again before it decrypts again.
 */
export interface StagingOptions {
  signal?: AbortSignal;
  onProgress?: (bytes: number) => void;
}

export function storedPath(dir: string, name: ArtifactName): string {
  return join(dir, `${name}.stored`);
}

export function plainPath(dir: string, name: ArtifactName, artifact: ArtifactSummary): string {
  return artifact.encryption === 'none' ? storedPath(dir, name) : join(dir, `${name}.plain`);
}

/**
 * Downloads an artifact and keeps it only when its size and sha256 equal the manifest's. A
 * mismatch fails non-retryably, naming the artifact, its key and both checksums: the stored
 * object differs from what was backed up, and no retry will change that.
 */
export async function downloadVerified(repository: Repository, name: ArtifactName, artifact: ArtifactSummary, dir: string, options: StagingOptions = {}): Promise<void> {
  const source = await openArtifact(repository, name, artifact, options.signal);
  try {
    await writeFileAtomically(storedPath(dir, name), source, {
      signal: options.signal,
      onProgress: options.onProgress,
      verify: (written) => {
        if (written.size !== artifact.size || written.sha256 !== artifact.sha256) throw checksumMismatch(repository.name, name, artifact, written);
      },
    });
  } finally {
    source.destroy();
  }
}

/** The stored bytes of an artifact; one the manifest names but the repository lacks fails non-retryably (ArtifactMissing). */
export async function openArtifact(repository: Repository, name: ArtifactName, artifact: ArtifactSummary, signal?: AbortSignal): Promise<Readable> {
  try {
    return await repository.openRead(artifact.key, { signal });
  } catch (error) {
    if (!(error instanceof ObjectNotFoundError)) throw error;
    throw ApplicationFailure.create({
      type: 'ArtifactMissing',
      nonRetryable: true,
      message: `artifact ${name} (${repository.name}:${artifact.key}) named by the manifest is missing from the repository`,
    });
  }
}

export function checksumMismatch(repository: string, name: ArtifactName, artifact: ArtifactSummary, actual: Digest): ApplicationFailure {
  return ApplicationFailure.create({
    type: 'ArtifactChecksumMismatch',
    nonRetryable: true,
    message:
      `artifact ${name} (${repository}:${artifact.key}) does not match its manifest: ` +
      `expected sha256 ${artifact.sha256} (${artifact.size} bytes), got sha256 ${actual.sha256} (${actual.size} bytes)`,
  });
}

/**
 * Turns a verified `.stored` file into `.plain` (OpenPGP), streaming; the ciphertext is removed
 * afterwards. Returns the plaintext's size and sha256.
 */
export async function decryptStored(
  name: ArtifactName,
  artifact: ArtifactSummary,
  dir: string,
  decrypt: (ciphertext: Readable) => Promise<Readable>,
  options: StagingOptions = {},
): Promise<Digest> {
  const plaintext = await decrypt(createReadStream(storedPath(dir, name)));
  const digest = await writeFileAtomically(plainPath(dir, name, artifact), plaintext, { signal: options.signal, onProgress: options.onProgress });
  await rm(storedPath(dir, name), { force: true });
  return digest;
}

/** Decrypts a small artifact (the globals script) into memory: nothing of its plaintext is written to disk. */
export async function decryptToString(ciphertext: Readable, decrypt: (ciphertext: Readable) => Promise<Readable>): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of await decrypt(ciphertext)) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks).toString('utf8');
}

/** The size of a staged file, or undefined when it is not there. */
export async function stagedSize(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).size;
  } catch {
    return undefined;
  }
}
