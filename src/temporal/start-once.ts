import { WorkflowExecutionAlreadyStartedError, type Client, type WorkflowHandleWithFirstExecutionRunId, type WorkflowStartOptions } from '@temporalio/client';
import { WorkflowIdReusePolicy, type Workflow } from '@temporalio/common';
import { InputError } from '../errors.js';

/**
 * Starts a backup, drill or restore whose workflow id may never run twice: not while it runs
 * and not after it closed (REJECT_DUPLICATE; Temporal's default would start a new run of a
 * closed id). A second run of `backup-<env>-<backup id>` would write over that backup's
 * artifacts; a second run of a restore id would meet the first run's database. The workflows
 * guard themselves too (a complete backup id is refused, databases are marked per run), for
 * runs started by `temporal workflow start` or the Web UI, which choose their own policy.
 */
export async function startOnce<T extends Workflow>(
  client: Client,
  workflowType: string,
  options: WorkflowStartOptions<T>,
): Promise<WorkflowHandleWithFirstExecutionRunId<T>> {
  try {
    return await client.workflow.start<T>(workflowType, { ...options, workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE });
  } catch (error) {
    if (error instanceof WorkflowExecutionAlreadyStartedError) {
      throw new InputError(`workflow id ${options.workflowId} has been used before (${workflowType}): a backup or restore id runs once; start a new one`);
    }
    throw error;
  }
}
