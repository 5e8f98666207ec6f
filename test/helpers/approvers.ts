import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { WorkflowHandle } from '@temporalio/client';
import { statementFields } from '../../src/commands/approve.js';
import { approvalStatement, type StatementFields } from '../../src/restore/approval-statement.js';
import { signStatement } from '../../src/restore/ssh-signatures.js';
import { restoreStatusQuery, type ApproveRestoreSignal } from '../../workflows/messages.js';

const run = promisify(execFile);

/**
 * Approvers with real ed25519 keys made by ssh-keygen, and the worker's
 * RESTORE_ALLOWED_SIGNERS_FILE listing some of them. Signs exactly as `erp4-backup approve
 * --key` does (ssh-keygen -Y sign over the statement built from `status`).
 */
export interface TestApprovers {
  dir: string;
  /** RESTORE_ALLOWED_SIGNERS_FILE. */
  allowedSignersFile: string;
  keyFile(name: string): string;
  /** Rewrites the allowed_signers file: `name` -> whose key (default: their own). */
  allow(entries: Record<string, string>): Promise<void>;
  /** SHA256 fingerprint of a key, as ssh-keygen prints it. */
  fingerprint(name: string): Promise<string>;
  /** A signed approve-restore payload for `fields`, by `approver`, signed with `keyOf`'s key. */
  signed(fields: StatementFields, approver: string, options?: { keyOf?: string; comment?: string }): Promise<ApproveRestoreSignal>;
  /** The same, for the statement the running workflow shows in `status`. */
  signedFor(handle: WorkflowHandle, approver: string, options?: { keyOf?: string; comment?: string }): Promise<ApproveRestoreSignal>;
  /** An ssh-agent holding `name`'s private key; sign with `${keyFile(name)}.pub` and SSH_AUTH_SOCK=socket. */
  agentWith(name: string): Promise<{ socket: string; stop(): Promise<void> }>;
  close(): Promise<void>;
}

export async function createApprovers(names: readonly string[], allowed: readonly string[] = names): Promise<TestApprovers> {
  const dir = await mkdtemp(join(tmpdir(), 'erp4-approvers-'));
  const keyFile = (name: string) => join(dir, `${name}_ed25519`);
  await Promise.all(names.map((name) => run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `${name}@test`, '-f', keyFile(name)])));
  const allowedSignersFile = join(dir, 'allowed_signers');
  const allow = async (entries: Record<string, string>) => {
    const lines = await Promise.all(Object.entries(entries).map(async ([name, owner]) => `${name} ${(await readFile(`${keyFile(owner)}.pub`, 'utf8')).trim()}`));
    await writeFile(allowedSignersFile, `${lines.join('\n')}\n`);
  };
  await allow(Object.fromEntries(allowed.map((name) => [name, name])));
  const signed = async (fields: StatementFields, approver: string, options: { keyOf?: string; comment?: string } = {}): Promise<ApproveRestoreSignal> => {
    const statement = approvalStatement(fields, options.comment);
    return { approver, statement, signature: await signStatement(statement, keyFile(options.keyOf ?? approver)) };
  };
  return {
    dir,
    allowedSignersFile,
    keyFile,
    allow,
    async fingerprint(name) {
      return (await run('ssh-keygen', ['-l', '-f', `${keyFile(name)}.pub`])).stdout.split(' ')[1]!;
    },
    signed,
    async signedFor(handle, approver, options) {
      const status = await handle.query(restoreStatusQuery);
      const fields = statementFields(handle.workflowId, (await handle.describe()).runId, status);
      if (typeof fields === 'string') throw new Error(`cannot sign for ${handle.workflowId}: ${fields}`);
      return signed(fields, approver, options);
    },
    async agentWith(name) {
      const socket = join(dir, `agent-${name}.sock`);
      const pid = /SSH_AGENT_PID=(\d+)/.exec((await run('ssh-agent', ['-s', '-a', socket])).stdout)?.[1];
      if (!pid) throw new Error('ssh-agent did not say its pid');
      await run('ssh-add', ['-q', keyFile(name)], { env: { ...process.env, SSH_AUTH_SOCK: socket } });
      return { socket, stop: async () => void process.kill(Number(pid)) };
    },
    close: () => rm(dir, { recursive: true, force: true }),
  };
}
