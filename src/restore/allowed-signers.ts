/**
 * RESTORE_ALLOWED_SIGNERS_FILE: the approvers' public keys, in OpenSSH's `allowed_signers` form
 * (ssh-keygen(1), ALLOWED SIGNERS), one key per line:
 *
 *     alice ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA... alice@laptop
 *     bob namespaces="erp4-backup-approve" ssh-ed25519 AAAA...
 *
 * Pure: the worker parses it at start (a bad line stops it, naming the variable and the line) and
 * again before every verification (an edited file takes effect without a restart). Stricter than
 * ssh-keygen on purpose: each principal must be a name of RESTORE_APPROVERS (no wildcards), and
 * `cert-authority` lines are refused, because dual control counts individual keys.
 */
import { APPROVAL_NAMESPACE } from './approval-statement.js';

export interface AllowedSigner {
  /** 1-based line number in the file. */
  line: number;
  principals: string[];
  /** The key type and base64 blob, e.g. `ssh-ed25519 AAAA...`. */
  key: string;
  /** The line as written (handed to ssh-keygen unchanged). */
  text: string;
}

const KEY_TYPES = new Set([
  'ssh-ed25519',
  'ssh-rsa',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'sk-ssh-ed25519@openssh.com',
  'sk-ecdsa-sha2-nistp256@openssh.com',
]);
const OPTION = /^(namespaces|valid-after|valid-before)="[^"]*"$/;
const PRINCIPAL = /^[A-Za-z0-9][A-Za-z0-9._@-]*$/;

/** The lines of an allowed_signers file; throws an Error naming the first bad line. */
export function parseAllowedSigners(text: string): AllowedSigner[] {
  const signers: AllowedSigner[] = [];
  for (const [index, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const where = `line ${index + 1}`;
    const fields = line.split(/\s+/);
    const [principalField, ...rest] = fields as [string, ...string[]];
    const principals = principalField.split(',');
    const badPrincipal = principals.find((p) => !PRINCIPAL.test(p));
    if (badPrincipal !== undefined) {
      throw new Error(`${where}: principal ${JSON.stringify(badPrincipal)} is not an approver name (no wildcards or quotes); expected "name[,name] [options] keytype base64-key"`);
    }
    let next = rest.shift();
    // Options come before the key type: a comma list of `cert-authority` and `name="value"`.
    if (next !== undefined && !KEY_TYPES.has(next) && (next.includes('=') || next.split(',').includes('cert-authority'))) {
      for (const option of next.match(/(?:[^,"]+|"[^"]*")+/g) ?? []) {
        if (option === 'cert-authority') throw new Error(`${where}: cert-authority is not accepted: dual control counts individual keys, list each approver's key`);
        if (!OPTION.test(option)) throw new Error(`${where}: option ${JSON.stringify(option)} is not one of namespaces="...", valid-after="...", valid-before="..."`);
        const namespaces = /^namespaces="([^"]*)"$/.exec(option)?.[1];
        if (namespaces !== undefined && !namespaces.split(',').includes(APPROVAL_NAMESPACE)) {
          throw new Error(`${where}: namespaces="${namespaces}" excludes ${APPROVAL_NAMESPACE}, so this key could never sign an approval`);
        }
      }
      next = rest.shift();
    }
    if (next === undefined || !KEY_TYPES.has(next)) {
      throw new Error(`${where}: ${next === undefined ? 'no key' : `${JSON.stringify(next.slice(0, 40))} is not an OpenSSH key type`}; expected one of ${[...KEY_TYPES].join(', ')}`);
    }
    const blob = rest.shift();
    if (blob === undefined || !isKeyBlob(next, blob)) throw new Error(`${where}: the ${next} key is missing or is not a base64 ${next} public key`);
    signers.push({ line: index + 1, principals, key: `${next} ${blob}`, text: line });
  }
  return signers;
}

/** Why the file does not fit RESTORE_APPROVERS (a principal who is not an approver), or undefined. */
export function unknownPrincipalProblem(signers: readonly AllowedSigner[], approverNames: readonly string[]): string | undefined {
  for (const signer of signers) {
    const unknown = signer.principals.find((p) => !approverNames.includes(p));
    if (unknown !== undefined) {
      return `line ${signer.line}: ${JSON.stringify(unknown)} is not in RESTORE_APPROVERS (${approverNames.join(', ') || 'empty'}); expected a key per configured approver only`;
    }
  }
  return undefined;
}

/** An SSH public key blob starts with its own key type as an SSH string. */
function isKeyBlob(keyType: string, blob: string): boolean {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(blob)) return false;
  const bytes = Buffer.from(blob, 'base64');
  if (bytes.length < 4) return false;
  const length = bytes.readUInt32BE(0);
  return length === keyType.length && bytes.subarray(4, 4 + length).toString('latin1') === keyType;
}
