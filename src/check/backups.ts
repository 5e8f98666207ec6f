import { readCatalog, type Catalog } from '../catalog.js';
import type { Config } from '../config.js';
import { evaluateFreshness, formatAge, type RepositoryFacts } from '../freshness.js';
import { openRepository, repositoryNames } from '../repositories.js';
import { critical, ok, unknown, within, type ProbeResult } from './probe.js';

const TIMEOUT_MS = 60_000;

/** Every repository's catalog (the manifests, with the reader's credentials), or why it could not be read. */
export async function readCatalogs(config: Config): Promise<Map<string, Catalog | Error>> {
  const entries = await Promise.all(
    repositoryNames(config).map(async (name): Promise<[string, Catalog | Error]> => {
      const repository = openRepository(config, 'reader', name)!;
      try {
        return [name, await within(TIMEOUT_MS, `${name}: reading the catalog`, readCatalog(repository, config.env))];
      } catch (error) {
        return [name, error instanceof Error ? error : new Error(String(error))];
      } finally {
        await repository.close().catch(() => undefined);
      }
    }),
  );
  return new Map(entries);
}

/**
 * The newest backup's age against RPO_DAILY and, with CRITICAL_TABLES, RPO_CRITICAL (S9), judged
 * as the Freshness watchdog judges it (src/freshness.ts): the newest covering backup in any
 * readable repository. None at all is a WARNING (expected before the first night; the remedy is a
 * backup, not a setting); one older than the RPO is CRITICAL, naming the RPO it is judged by.
 */
export function probeBackupAge(config: Config, catalogs: ReadonlyMap<string, Catalog | Error>, now: Date): ProbeResult[] {
  const classes: { rpoClass: 'daily' | 'critical'; variable: string; rpoMs: number }[] = [{ rpoClass: 'daily', variable: 'RPO_DAILY', rpoMs: config.freshness.rpoDailyMs }];
  if (config.backup.criticalTables.length > 0) classes.push({ rpoClass: 'critical', variable: 'RPO_CRITICAL', rpoMs: config.freshness.rpoCriticalMs });
  const readable: RepositoryFacts[] = [];
  for (const [name, catalog] of catalogs) {
    if (catalog instanceof Error) continue;
    readable.push({ name, backups: catalog.backups.map(({ id, kind, generatedAt }) => ({ id, kind, generatedAt })), drills: [] });
  }
  const names = classes.map(({ rpoClass }) => `backup age: ${rpoClass}`);
  if (readable.length === 0) return names.map((name) => unknown(name, 'no repository could be read'));
  const findings = evaluateFreshness(
    {
      env: config.env,
      policy: {
        rpoDailyMs: config.freshness.rpoDailyMs,
        rpoCriticalMs: classes.length > 1 ? config.freshness.rpoCriticalMs : undefined,
        drillMaxAgeMs: config.freshness.drillMaxAgeMs,
        offsiteMaxLagMs: config.freshness.offsiteMaxLagMs,
      },
      repositories: readable,
    },
    now,
  );
  const newestPerKind = newestByKind(readable, now);
  return classes.map(({ rpoClass, variable, rpoMs }, index) => {
    const name = names[index]!;
    const finding = findings.find((candidate) => candidate.id === `backup-stale:${rpoClass}`);
    if (!finding) return ok(name, `within ${variable} ${formatAge(rpoMs)}; newest per kind: ${newestPerKind}`);
    if (finding.details.newest_backup === undefined) {
      return { name, status: 'WARNING', detail: `${finding.summary}: expected before the first night`, settings: [], remedy: `erp4-backup backup --kind ${rpoClass}` };
    }
    return critical(name, new Error(`${finding.summary}; newest per kind: ${newestPerKind}`), { settings: [variable], remedy: `find the failed NightlyBackup, fix it, erp4-backup schedules trigger ${rpoClass} --wait` });
  });
}

function newestByKind(repositories: readonly RepositoryFacts[], now: Date): string {
  const newest = new Map<string, { id: string; at: number }>();
  for (const backup of repositories.flatMap((repository) => repository.backups)) {
    const at = Date.parse(backup.generatedAt);
    if ((newest.get(backup.kind)?.at ?? -Infinity) < at) newest.set(backup.kind, { id: backup.id, at });
  }
  if (newest.size === 0) return 'none';
  return [...newest].map(([kind, { id, at }]) => `${kind} ${id} ${formatAge(now.getTime() - at)} old`).join(', ');
}

