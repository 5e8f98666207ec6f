#!/usr/bin/env node
// Writes the workflow bundle the built worker runs (dist/workflow-bundle.js), after `tsc`:
// part of `npm run build`. See prebuiltBundlePath() in src/temporal/worker.ts for why.
import { writeFile } from 'node:fs/promises';
import { bundleWorkflows, prebuiltBundlePath } from '../dist/src/temporal/worker.js';

const { code } = await bundleWorkflows();
await writeFile(prebuiltBundlePath(), code);
console.log(`${prebuiltBundlePath()}: ${(code.length / 1024).toFixed(0)} KiB`);
