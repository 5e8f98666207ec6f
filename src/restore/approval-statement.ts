/**
 * What an approver signs: one run of one restore of one backup into one target with one plan
 * of roles. Defined once, used by the workflow (the statement it expects, shown in `status`),
 * `erp4-backup approve` (the statement it signs) and the tests. Pure and deterministic.
 *
 *     erp4-backup approve-restore v1
 *     workflow-id: "restore-20261126T170000Z"
 *     run-id: "3f0c...-..."
 *     mode: "restore"
 *     backup-id: "20261126T170000Z-daily"
 *     repository: "s3"
 *     database: "erp4"
 *     asset-dir: "/srv/erp4/files"          (or: none)
 *     apply-roles: yes                       (or: no, and no role lines)
 *     create-roles: ["erp4_report"]
 *     change-roles: ["erp4_app"]
 *     comment: "incident 42"                 (optional, the approver's note)
 *
 * Values are JSON strings, so a name with spaces, quotes or newlines stays on its line. The
 * signature (`ssh-keygen -Y sign -n erp4-backup-approve`) covers these exact bytes.
 */
import type { RestoreMode } from './report.js';

/** The ssh-keygen `-n` namespace of approvals: a signature made for anything else never verifies. */
export const APPROVAL_NAMESPACE = 'erp4-backup-approve';
const HEADER = 'erp4-backup approve-restore v1';
const MAX_COMMENT = 500;

export interface StatementFields {
  workflowId: string;
  runId: string;
  mode: RestoreMode;
  backupId: string;
  repository: string;
  database: string;
  assetDir?: string;
  /** `--overlay`: the critical backup laid over the restored one (S9's 6-hour RPO path). */
  overlayBackupId?: string;
  /** The roles plan of a Restore with the backup's globals; absent: no roles are applied. */
  roles?: { apply: boolean; create: readonly string[]; change: readonly string[] };
}

export function approvalStatement(fields: StatementFields, comment?: string): string {
  const lines = [
    HEADER,
    `workflow-id: ${JSON.stringify(fields.workflowId)}`,
    `run-id: ${JSON.stringify(fields.runId)}`,
    `mode: ${JSON.stringify(fields.mode)}`,
    `backup-id: ${JSON.stringify(fields.backupId)}`,
    `repository: ${JSON.stringify(fields.repository)}`,
    `database: ${JSON.stringify(fields.database)}`,
    `asset-dir: ${fields.assetDir === undefined ? 'none' : JSON.stringify(fields.assetDir)}`,
    ...(fields.overlayBackupId !== undefined ? [`overlay-backup-id: ${JSON.stringify(fields.overlayBackupId)}`] : []),
  ];
  if (fields.roles?.apply) {
    lines.push('apply-roles: yes', `create-roles: ${JSON.stringify(fields.roles.create)}`, `change-roles: ${JSON.stringify(fields.roles.change)}`);
  } else {
    lines.push('apply-roles: no');
  }
  if (comment !== undefined) lines.push(`comment: ${JSON.stringify(comment.slice(0, MAX_COMMENT))}`);
  return `${lines.join('\n')}\n`;
}

/**
 * Whether `signed` is the statement this run expects (with or without a comment line): the
 * comment it carries, or why it is not, naming a replay from another run or another plan.
 */
export function judgeStatement(expected: StatementFields, signed: string): { comment?: string } | { refused: string } {
  const lines = signed.replace(/\n$/, '').split('\n');
  if (lines[0] !== HEADER) return { refused: `the signed text is not an approval statement (expected its first line to be "${HEADER}")` };
  const values = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const match = /^([a-z-]+): (.*)$/.exec(line);
    if (match) values.set(match[1]!, match[2]!);
  }
  const expectedLines = approvalStatement(expected).split('\n');
  const field = (name: string) => expectedLines.find((l) => l.startsWith(`${name}: `))?.slice(name.length + 2);
  const differs = (name: string) => values.get(name) !== field(name);
  if (differs('workflow-id') || differs('run-id')) {
    return {
      refused: `replayed from another run: signed for workflow ${values.get('workflow-id') ?? '?'} run ${values.get('run-id') ?? '?'}, this is workflow ${field('workflow-id')} run ${field('run-id')}`,
    };
  }
  for (const name of ['mode', 'backup-id', 'repository', 'database', 'asset-dir', 'overlay-backup-id', 'apply-roles', 'create-roles', 'change-roles']) {
    if (differs(name)) return { refused: `signed for another plan: ${name} is ${values.get(name) ?? '(missing)'}, this restore's is ${field(name) ?? '(none)'}` };
  }
  let comment: string | undefined;
  const commentText = values.get('comment');
  if (commentText !== undefined) {
    try {
      const parsed: unknown = JSON.parse(commentText);
      if (typeof parsed === 'string') comment = parsed;
    } catch {
      // Reported below: the text then differs from any statement this run would accept.
    }
  }
  if (signed !== approvalStatement(expected, comment)) {
    return { refused: 'the signed text has lines an approval statement does not have (or a comment longer than 500 characters); sign exactly the statement shown in status' };
  }
  return comment === undefined ? {} : { comment };
}
