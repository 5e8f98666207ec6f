import { PassThrough, pipeline, type Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { ArtifactName } from '../src/layout.js';
import type { ArtifactSummary } from '../src/restore/report.js';
import { writeFileAtomically } from '../src/storage/atomic-file.js';
import { Sha256Meter, type Digest } from '../src/storage/hash.js';
import type { Repository } from '../src/storage/repository.js';
import { checksumMismatch, openArtifact, plainPath, type StagingOptions } from './restore-staging.js';

/**
 * One pass over an OpenPGP artifact: repository -> size + sha256 of the STORED bytes -> decrypt
 * -> `<artifact>.plain` under a temporary name. The plaintext is renamed to its final name only
 * after the stream ended AND the stored bytes' size and sha256 equal the manifest's; otherwise
 * the temporary plaintext is deleted (writeFileAtomically) and nothing of it is ever used. A
 * mismatch fails non-retryably (ArtifactChecksumMismatch), even when it made the decryption fail
 * first: the rest of the stored bytes is then still hashed, so the report names the real cause.
 * Returns the plaintext's size and sha256.
 */
export async function fetchDecrypted(
  repository: Repository,
  name: ArtifactName,
  artifact: ArtifactSummary,
  dir: string,
  decrypt: (ciphertext: Readable) => Promise<Readable>,
  options: StagingOptions = {},
): Promise<Digest> {
  const source = await openArtifact(repository, name, artifact, options.signal);
  const stored = new Sha256Meter({ onProgress: options.onProgress });
  let feedError: Error | undefined;
  // pipeline: an error of the download destroys the meter (and so the decryption's input).
  pipeline(source, stored, (error) => {
    if (error) feedError = error;
  });
  // openpgp destroys its input when it fails early (a missing key, a bad header): it gets a
  // separate stream, so the meter survives to hash the rest of the stored bytes.
  const feed = new PassThrough();
  stored.pipe(feed);
  stored.on('error', (error) => feed.destroy(error));

  const storedDigest = async (): Promise<Digest> => {
    if (!stored.writableFinished) {
      stored.unpipe(feed);
      stored.resume();
      await finished(stored, { readable: false });
    }
    return stored.digest();
  };
  const matches = (digest: Digest) => digest.size === artifact.size && digest.sha256 === artifact.sha256;

  let verified: Digest | undefined;
  // The plaintext ends only once the stored bytes ended and were hashed (openpgp may stop
  // reading before their end), so `verify` below always sees the digest of all of them.
  const untilStoredEnded = new PassThrough({
    flush(callback) {
      storedDigest().then((digest) => {
        verified = digest;
        callback();
      }, callback);
    },
  });
  try {
    const plaintext = await decrypt(feed);
    const checked = pipeline(plaintext, untilStoredEnded, () => undefined);
    return await writeFileAtomically(plainPath(dir, name, artifact), checked, {
      signal: options.signal,
      verify: () => {
        if (!verified || !matches(verified)) throw checksumMismatch(repository.name, name, artifact, verified ?? { size: 0, sha256: '(not read to the end)' });
      },
    });
  } catch (error) {
    if (options.signal?.aborted || feedError) throw feedError ?? error;
    if (verified && !matches(verified)) throw checksumMismatch(repository.name, name, artifact, verified);
    if (!verified) {
      // The decryption failed before the end: were the stored bytes the cause?
      const digest = await storedDigest().catch(() => undefined);
      if (digest && !matches(digest)) throw checksumMismatch(repository.name, name, artifact, digest);
    }
    throw error;
  } finally {
    source.destroy();
    stored.destroy();
    feed.destroy();
    untilStoredEnded.destroy();
  }
}
