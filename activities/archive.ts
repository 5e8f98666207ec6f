import { Context } from '@temporalio/activity';
import type { Stats } from 'node:fs';
import { Readable } from 'node:stream';
import { create as createTar, type ReadEntry } from 'tar';
import { progressHeartbeat } from './heartbeat.js';
import { stageStream, type StagedFile } from './staging.js';

export interface AssetArchive {
  file: StagedFile;
  fileCount: number;
  bytes: number;
}

/**
 * Archives ASSET_DIR (the PDF files, S2) as a tar stream, never read whole into memory.
 * No compression: PDFs are compressed already, and gzip would only cost CPU.
 */
export async function archiveAssets(
  settings: { assetDir: string; encrypt?: (plaintext: Readable) => Promise<Readable> },
  stagingPath: string,
): Promise<AssetArchive> {
  let fileCount = 0;
  let bytes = 0;
  const tarStream = createTar(
    {
      cwd: settings.assetDir,
      portable: true,
      // When creating, tar hands the filter the fs.Stats of each path.
      filter: (_path: string, stat: Stats | ReadEntry) => {
        if ('isFile' in stat && stat.isFile()) {
          fileCount += 1;
          bytes += stat.size;
        }
        return true;
      },
    },
    ['.'],
  );
  // node-tar streams are Minipass streams: Readable.from adapts them for stream.pipeline.
  const file = await stageStream(Readable.from(tarStream), stagingPath, {
    encrypt: settings.encrypt,
    onProgress: progressHeartbeat('assets'),
    signal: Context.current().cancellationSignal,
  });
  return { file, fileCount, bytes };
}
