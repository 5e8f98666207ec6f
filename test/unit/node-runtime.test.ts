import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';

// The tested runtime is Node.js 24 (README): the suite itself runs on it, whatever the system's
// Node is (scripts/provision.sh links .tools/bin/node, the npm scripts put it first on PATH).
it('runs on Node.js 24 or newer, as package.json engines and the Docker image say', () => {
  expect(Number(process.versions.node.split('.')[0])).toBeGreaterThanOrEqual(24);
  const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { engines: { node: string }; devDependencies: Record<string, string> };
  expect(pkg.engines.node).toBe('>=24');
  expect(pkg.devDependencies['@types/node']).toMatch(/^24\./);
  expect(readFileSync('Dockerfile', 'utf8')).toMatch(/^FROM node:24\.\d+\.\d+-bookworm-slim/m);
});
