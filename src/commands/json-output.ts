import { describeError } from './format.js';

/**
 * `--json`: the command's one JSON document on stdout (nothing else goes there: progress and
 * messages go to stderr), indented like `list --json` and `schedules list --json`.
 */
export function writeJson(out: NodeJS.WritableStream, value: unknown): void {
  out.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Where a command's human lines go: stdout, or stderr when stdout holds its JSON document. */
export function humanOutput(json: boolean | undefined, out: NodeJS.WritableStream = process.stdout): NodeJS.WritableStream {
  return json ? process.stderr : out;
}

/**
 * Follows a started run; with --json its document goes to stdout however it ends: the workflow
 * id and the result, or `outcome: "failed"` and the error (the exit code says the same).
 */
export async function reportRun<T extends object>(
  options: { json?: boolean },
  stdout: NodeJS.WritableStream,
  workflowId: string,
  follow: () => Promise<T>,
): Promise<T> {
  try {
    const result = await follow();
    if (options.json) writeJson(stdout, { workflowId, ...result });
    return result;
  } catch (error) {
    if (options.json) writeJson(stdout, { workflowId, outcome: 'failed', error: describeError(error) });
    throw error;
  }
}
