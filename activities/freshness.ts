import { z } from 'zod';
import { readCatalog } from '../src/catalog.js';
import type { Finding, FreshnessFacts, OpenIncident, RepositoryFacts } from '../src/freshness.js';
import { InputError } from '../src/errors.js';
import type { Repository } from '../src/storage/repository.js';
import { postNotice } from './notify.js';
import type { BackupRuntime } from './runtime.js';

/**
 * The activities of the Freshness watchdog: read what every repository holds (with the
 * read-only credentials, S15), keep the open incidents, and announce changes on the webhook.
 *
 * The open incidents persist between the 15-minute runs as a small JSON file in the local
 * repository, `<env>/meta/alerts/freshness.json` (readers of the catalog ignore it: manifests
 * sit directly in meta/). It holds only incidents already announced, so an alert whose notice
 * failed is announced again by the next run, and one that was sent is never repeated.
 */

const drillReportSchema = z.object({
  outcome: z.string(),
  finishedAt: z.iso.datetime(),
  failure: z.object({ cause: z.string() }).optional(),
  rto: z.object({ measuredMs: z.number() }).optional(),
});

const openIncidentsSchema = z.object({
  format: z.literal(1),
  incidents: z.array(
    z.object({
      id: z.string(),
      check: z.enum(['backup-stale', 'drill-failed', 'drill-stale', 'offsite-lag', 'repository-unreadable']),
      summary: z.string(),
      openedAt: z.iso.datetime(),
    }),
  ),
});

export function alertStateKey(env: string): string {
  return `${env}/meta/alerts/freshness.json`;
}

/**
 * The newest drill report of the repository. Report ids start with the drill's start time, so
 * the newest sorts last by file name; a report that cannot be read counts as a failed drill.
 */
async function newestDrill(repository: Repository, env: string): Promise<RepositoryFacts['drills']> {
  const reports = (await repository.list(`${env}/meta/drills/`)).filter((object) => object.key.endsWith('.json'));
  const fileName = (key: string) => key.slice(key.lastIndexOf('/') + 1);
  const latest = reports.sort((a, b) => fileName(a.key).localeCompare(fileName(b.key))).at(-1);
  if (!latest) return [];
  try {
    const report = drillReportSchema.parse(JSON.parse((await repository.getBytes(latest.key)).toString('utf8')));
    return [
      {
        key: latest.key,
        outcome: report.outcome,
        finishedAt: report.finishedAt,
        ...(report.failure ? { cause: report.failure.cause } : {}),
        ...(report.rto ? { rtoMs: report.rto.measuredMs } : {}),
      },
    ];
  } catch (error) {
    return [{ key: latest.key, outcome: 'unreadable-report', finishedAt: latest.modifiedAt.toISOString(), cause: (error as Error).message }];
  }
}

export function createFreshnessActivities(runtime: BackupRuntime) {
  const env = runtime.layout.env;
  const local = () => {
    const repository = runtime.repositories.get('local');
    if (!repository) throw new InputError('the local repository (BACKUP_DIR) is not configured');
    return repository;
  };

  async function repositoryFacts(name: string): Promise<RepositoryFacts> {
    const repository = runtime.restore.openReader(name);
    if (!repository) return { name, error: 'not configured', backups: [], drills: [] };
    try {
      const catalog = await readCatalog(repository, env);
      return {
        name,
        // Freshness runs on any host: the local repository it reads is that host's own.
        ...(name === 'local' ? { host: runtime.host.id } : {}),
        backups: catalog.backups.map((manifest) => ({ id: manifest.id, kind: manifest.kind, generatedAt: manifest.generatedAt })),
        drills: await newestDrill(repository, env),
      };
    } catch (error) {
      return { name, error: (error as Error).message, backups: [], drills: [] };
    } finally {
      await repository.close();
    }
  }

  return {
    /** What each repository holds; an unreadable repository is a fact too, not a failure. */
    async gatherFreshnessFacts(): Promise<FreshnessFacts> {
      const { rpoCriticalMs, ...policy } = runtime.freshness;
      return {
        env,
        policy: { ...policy, ...(runtime.criticalTables.length > 0 ? { rpoCriticalMs } : {}) },
        repositories: await Promise.all(runtime.restore.readerNames.map(repositoryFacts)),
      };
    },

    async loadOpenIncidents(): Promise<OpenIncident[]> {
      const repository = local();
      const key = alertStateKey(env);
      if (!(await repository.stat(key))) return [];
      return openIncidentsSchema.parse(JSON.parse((await repository.getBytes(key)).toString('utf8'))).incidents;
    },

    async saveOpenIncidents(incidents: OpenIncident[]): Promise<void> {
      const state = openIncidentsSchema.parse({ format: 1, incidents });
      await local().putBytes(alertStateKey(env), Buffer.from(`${JSON.stringify(state, null, 2)}\n`, 'utf8'));
    },

    async announceIncident(input: { finding: Finding; now: string }): Promise<void> {
      await postNotice(runtime.notifyWebhookUrl, {
        event: 'alert',
        env,
        summary: `ALERT ${input.finding.summary}`,
        fields: { incident: input.finding.id, check: input.finding.check, detected_at: input.now, ...input.finding.details },
      });
    },

    async announceRecovery(input: { incident: OpenIncident; now: string }): Promise<void> {
      await postNotice(runtime.notifyWebhookUrl, {
        event: 'recovered',
        env,
        summary: `RECOVERED ${input.incident.id}: no longer true: ${input.incident.summary}`,
        fields: { incident: input.incident.id, check: input.incident.check, opened_at: input.incident.openedAt, recovered_at: input.now },
      });
    },
  };
}
