import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

// No Docker engine here: the build context and the image's steps are read as docker would.
const root = path.resolve(import.meta.dirname, '../..');
const dockerfile = fs.readFileSync(path.join(root, 'Dockerfile'), 'utf8');
const dockerignore = fs.readFileSync(path.join(root, '.dockerignore'), 'utf8');

/** .dockerignore is an allow-list: `*`, then `!path` lines; a path is in the context when it is, or is under, one of them. */
function inBuildContext(file: string): boolean {
  const lines = dockerignore.split('\n').map((line) => line.trim()).filter((line) => line !== '' && !line.startsWith('#'));
  expect(lines[0], '.dockerignore starts by excluding everything').toBe('*');
  return lines.slice(1).some((line) => line.startsWith('!') && (file === line.slice(1).replace(/\/$/, '') || file.startsWith(line.slice(1).replace(/\/?$/, '/'))));
}

describe('the Docker build context', () => {
  it('holds everything the Dockerfile copies from it', () => {
    const sources = [...dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((match) => match[1]!.split(/\s+/)).map((source) => source.replace(/^\.\//, '').replace(/\/$/, ''));
    expect(sources).toEqual(expect.arrayContaining(['package.json', 'src', 'workflows', 'activities']));
    for (const source of sources) expect(inBuildContext(source), source).toBe(true);
  });

  it('leaves out dumps, secrets, keys and the host build', () => {
    for (const file of ['.env', 'backups/prod/db/erp4-20261126T170000Z-daily.dump', 'node_modules/pg/package.json', '.tools/tools.env', 'dist/src/cli.js', 'id_ed25519', '.git/config']) {
      expect(inBuildContext(file), file).toBe(false);
    }
  });
});
