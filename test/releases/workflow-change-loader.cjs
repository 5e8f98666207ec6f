// A webpack loader for the replay tests (test/releases/replay.test.ts): makes a change to one
// workflow module, as a developer's edit would, so the tests can bundle "the next release"
// without a copy of the workflow code. Options: { changes: [{ anchor, insert }] } — each
// `insert` goes right after the first occurrence of its `anchor` ('' is the start of the file);
// a missing anchor fails the bundle, naming it (the test is stale, not the code).
module.exports = function insertWorkflowChanges(source) {
  let changed = source;
  for (const { anchor, insert } of this.getOptions().changes) {
    const at = changed.indexOf(anchor);
    if (at < 0) throw new Error(`workflow-change-loader: ${this.resourcePath} no longer contains ${JSON.stringify(anchor)}`);
    changed = changed.slice(0, at + anchor.length) + insert + changed.slice(at + anchor.length);
  }
  return changed;
};
