import type { GlobalsPlan } from './report.js';

/**
 * Roles from a `pg_dumpall --globals-only` script (S5). A production restore applies them only
 * when asked to, and only after showing which roles would be created and which changed; the
 * role the restore connects as is never touched (its password would otherwise be replaced by
 * the backup's). pg_dumpall writes every CREATE ROLE / ALTER ROLE statement on one line.
 */

const ROLE_STATEMENT = /^(CREATE|ALTER) ROLE ((?:"(?:[^"]|"")+")|[A-Za-z_][A-Za-z0-9_$]*)[ ;]/;

/** The roles the script creates, in order. */
export function rolesInGlobals(script: string): string[] {
  const roles: string[] = [];
  for (const line of script.split('\n')) {
    const match = ROLE_STATEMENT.exec(line);
    if (match?.[1] === 'CREATE' && match[2]) roles.push(unquote(match[2]));
  }
  return roles;
}

export function planGlobals(roles: readonly string[], existingRoles: ReadonlySet<string>, connectedAs: string): GlobalsPlan {
  const touched = roles.filter((role) => role !== connectedAs);
  return {
    create: touched.filter((role) => !existingRoles.has(role)),
    change: touched.filter((role) => existingRoles.has(role)),
    skipped: roles.filter((role) => role === connectedAs),
  };
}

/**
 * The script to run for `plan`: CREATE ROLE only for roles to create (CREATE of an existing role
 * is an error), and no statement at all about a skipped role. Everything else (role attributes,
 * memberships, tablespaces, settings) stays as pg_dumpall wrote it.
 */
export function scriptForPlan(script: string, plan: GlobalsPlan): string {
  const creatable = new Set(plan.create);
  const skipped = new Set(plan.skipped);
  return script
    .split('\n')
    .filter((line) => {
      const match = ROLE_STATEMENT.exec(line);
      if (!match?.[2]) return true;
      const role = unquote(match[2]);
      if (skipped.has(role)) return false;
      return match[1] === 'ALTER' || creatable.has(role);
    })
    .join('\n');
}

function unquote(identifier: string): string {
  return identifier.startsWith('"') ? identifier.slice(1, -1).replace(/""/g, '"') : identifier;
}
