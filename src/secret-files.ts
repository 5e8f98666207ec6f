import fs from 'node:fs';

/**
 * The secrets that may also come from a file, `<NAME>_FILE` (Docker secrets in /run/secrets,
 * systemd credentials in $CREDENTIALS_DIRECTORY): the file's content is the value, without one
 * trailing newline (what `echo` and editors add). GPG_PASSPHRASE has its own GPG_PASSPHRASE_FILE.
 */
export const SECRET_FILE_VARIABLES = [
  'DB_PASSWORD_FILE',
  'S3_WRITER_SECRET_ACCESS_KEY_FILE',
  'S3_READER_SECRET_ACCESS_KEY_FILE',
  'S3_PRUNER_SECRET_ACCESS_KEY_FILE',
  'S3_COPY_SECRET_ACCESS_KEY_FILE',
  'TEMPORAL_API_KEY_FILE',
  'NOTIFY_WEBHOOK_URL_FILE',
  'DRILL_DB_PASSWORD_FILE',
] as const;

export interface SecretFileIssue {
  variable: string;
  message: string;
}

/**
 * The environment with each `<NAME>_FILE` read into `<NAME>`, and the problems: an unreadable
 * file (naming `<NAME>_FILE`), or both `<NAME>` and `<NAME>_FILE` set (naming both). As
 * elsewhere in the configuration, an empty value counts as unset.
 */
export function readSecretFiles(env: NodeJS.ProcessEnv): { env: NodeJS.ProcessEnv; issues: SecretFileIssue[] } {
  const resolved: NodeJS.ProcessEnv = { ...env };
  const issues: SecretFileIssue[] = [];
  for (const fileVariable of SECRET_FILE_VARIABLES) {
    const file = env[fileVariable];
    if (file === undefined || file === '') continue;
    const variable = fileVariable.slice(0, -'_FILE'.length);
    if (env[variable] !== undefined && env[variable] !== '') {
      issues.push({ variable: fileVariable, message: `set together with ${variable}; expected one of them` });
      continue;
    }
    try {
      const value = fs.readFileSync(file, 'utf8').replace(/\r?\n$/, '');
      if (value === '') issues.push({ variable: fileVariable, message: `${file} is empty; expected a file holding ${variable}` });
      else resolved[variable] = value;
    } catch (error) {
      issues.push({ variable: fileVariable, message: `${file} cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)}); expected a readable file holding ${variable}` });
    }
  }
  return { env: resolved, issues };
}
