import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTool, ToolError } from '../child-process.js';
import { APPROVAL_NAMESPACE } from './approval-statement.js';

/**
 * Approval signatures with OpenSSH's own tool (`ssh-keygen -Y sign` / `-Y verify`, OpenSSH 8.1+):
 * the approver's private key stays on the approver's machine (a key file or ssh-agent), and the
 * worker checks against the allowed_signers lines it holds. Nothing here is secret: statements
 * and signatures may be shown, logged and kept in workflow history.
 */
const SSH_KEYGEN = 'ssh-keygen';
const INSTALL_HINT = 'install the OpenSSH client tools (Debian/Ubuntu: apt-get install openssh-client)';

async function run(args: readonly string[], input: string, signal?: AbortSignal): Promise<string> {
  const proc = startTool(SSH_KEYGEN, args, { installHint: INSTALL_HINT, ...(signal ? { signal } : {}) });
  proc.stdout.setEncoding('utf8');
  let out = '';
  proc.stdout.on('data', (chunk: string) => (out += chunk));
  proc.stdin.on('error', () => undefined);
  proc.stdin.end(input);
  await proc.exited;
  return out;
}

/**
 * Signs `text` with `keyFile`: a private key file (ssh-keygen asks for its passphrase on the
 * terminal), or a public key file whose private key is in ssh-agent (SSH_AUTH_SOCK).
 */
export async function signStatement(text: string, keyFile: string): Promise<string> {
  return run(['-Y', 'sign', '-q', '-f', keyFile, '-n', APPROVAL_NAMESPACE], text);
}

/**
 * Whether `signature` over `text` verifies for `principal` with the given allowed_signers lines:
 * the signing key's SHA256 fingerprint, or why not. Throws only when ssh-keygen cannot run.
 */
export async function verifyStatement(
  text: string,
  signature: string,
  principal: string,
  allowedSignerLines: readonly string[],
  signal?: AbortSignal,
): Promise<{ key: string } | { refused: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'erp4-approval-'));
  try {
    const allowed = join(dir, 'allowed_signers');
    const sig = join(dir, 'statement.sig');
    await writeFile(allowed, `${allowedSignerLines.join('\n')}\n`, { mode: 0o600 });
    await writeFile(sig, signature.endsWith('\n') ? signature : `${signature}\n`, { mode: 0o600 });
    try {
      const out = await run(['-Y', 'verify', '-f', allowed, '-I', principal, '-n', APPROVAL_NAMESPACE, '-s', sig], text, signal);
      const key = /key (SHA256:[A-Za-z0-9+/=]+)/.exec(out)?.[1];
      return key ? { key } : { refused: `ssh-keygen accepted the signature but named no key: ${out.trim().slice(0, 200)}` };
    } catch (error) {
      if (error instanceof ToolError && !error.permanent && /exited with code/.test(error.message)) {
        const detail = error.message.replace(/^ssh-keygen exited with code \d+: /, '').replace('(no output on stderr)', '').split('\n')[0]!.slice(0, 200);
        return {
          refused: `the signature does not verify with ${principal}'s key in RESTORE_ALLOWED_SIGNERS_FILE (forged, signed by another key or over another text)${detail ? `: ${detail}` : ''}`,
        };
      }
      throw error;
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
