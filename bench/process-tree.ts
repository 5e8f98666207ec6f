import { readdir, readFile } from 'node:fs/promises';

/**
 * The peak RSS of a whole process tree (the worker and the pg_dump, pg_restore, gpg... it runs):
 * VmHWM covers one process only, and a child's memory is gone from /proc when it exits, so
 * the tree is sampled while the work runs.
 */

/** `root` and every process below it, from (pid, parent pid) pairs. */
export function descendantsOf(root: number, parents: ReadonlyMap<number, number>): Set<number> {
  const children = new Map<number, number[]>();
  for (const [pid, parent] of parents) {
    const list = children.get(parent) ?? [];
    list.push(pid);
    children.set(parent, list);
  }
  const tree = new Set<number>([root]);
  const pending = [root];
  while (pending.length > 0) {
    for (const child of children.get(pending.pop()!) ?? []) {
      if (!tree.has(child)) {
        tree.add(child);
        pending.push(child);
      }
    }
  }
  return tree;
}

/** The parent pid (field 4) of a /proc/<pid>/stat line; the command name (field 2) may hold spaces and parentheses. */
export function parentPidOf(stat: string): number {
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

/** VmRSS of a /proc/<pid>/status text in bytes; 0 for a process without one (a zombie). */
export function residentBytesOf(status: string): number {
  const kb = /^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1];
  return kb === undefined ? 0 : Number(kb) * 1024;
}

/** Processes exit between listing and reading: their files vanish, and they count as nothing. */
async function readOrEmpty(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return '';
  }
}

/** The summed VmRSS of `root` and its descendants now. */
export async function treeResidentBytes(root: number): Promise<number> {
  const parents = new Map<number, number>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readOrEmpty(`/proc/${entry}/stat`);
    if (stat) parents.set(Number(entry), parentPidOf(stat));
  }
  let bytes = 0;
  for (const pid of descendantsOf(root, parents)) bytes += residentBytesOf(await readOrEmpty(`/proc/${pid}/status`));
  return bytes;
}

/**
 * Samples the tree's summed RSS every `intervalMs` until stop(), which returns the largest
 * sample. A process that lives shorter than one interval can be missed: the peak is a lower bound.
 */
export function sampleTreePeak(root: number, intervalMs = 100): { stop(): Promise<number> } {
  let peak = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      peak = Math.max(peak, await treeResidentBytes(root));
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return peak;
    },
  };
}
