// The workflow bundle's entry: every workflow type the worker registers.
export { NightlyBackup } from './nightly-backup.js';
export { Freshness } from './freshness.js';
export { RestoreDrill } from './restore-drill.js';
export { Restore } from './restore.js';
export { Prune } from './prune.js';
