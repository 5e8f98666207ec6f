import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  isCancellation,
  patched,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities, HostClaim, OverlayPlan, PlainDigests, RestorePlan } from '../activities/index.js';
import { isBackupId } from '../src/layout.js';
import { describeRule, type ApprovalRule } from '../src/restore/approval.js';
import {
  REPORT_FORMAT,
  measuredRto,
  reportIdFor,
  type CheckResult,
  type GlobalsPlan,
  type OverlayReport,
  type PhaseTiming,
  type RestoreMode,
  type RestoreOutcome,
  type RestoreReport,
} from '../src/restore/report.js';
import {
  approveRestoreSignal,
  backupEnvSearchAttribute,
  backupIdSearchAttribute,
  backupKindSearchAttribute,
  cancelRestoreSignal,
  restoreStatusQuery,
  type CancelRestoreSignal,
  type RestorePhase,
  type RestoreResult,
  type RestoreSelection,
  type RestoreStatus,
} from './messages.js';
import { heartbeatTimeoutSeconds } from './heartbeat-timeout.js';
import { createApprovalDesk } from './approval-desk.js';
import { hostTimeoutSeconds, isHostLost, onOneHost } from './on-one-host.js';

const DEFAULT_HEARTBEAT_TIMEOUT_SECONDS = 120;
// Issue 16 (docs/DEPLOYS.md): histories recorded before these changes replay the old commands.
const STREAMING_FETCH_PATCH = 'restore-streaming-fetch';
const CONCURRENT_ASSETS_PATCH = 'restore-assets-alongside-database';

// Long steps heartbeat; a dead worker is noticed within the heartbeat timeout (RestoreSelection.
// heartbeatTimeoutSeconds) and the step is retried elsewhere. On cancellation the workflow waits
// until the step has really stopped (pg_restore killed), so the cleanup never races it.
function activitiesFor(heartbeatSeconds: number, host?: { taskQueue: string; timeoutSeconds: number }) {
  // On a host queue a lost host shows as a schedule-to-start timeout (workflows/on-one-host.ts).
  const queue = host ? { taskQueue: host.taskQueue, scheduleToStartTimeout: host.timeoutSeconds * 1000 } : {};
  const longWork = proxyActivities<Activities>({
    ...queue,
    startToCloseTimeout: '12h',
    heartbeatTimeout: heartbeatSeconds * 1000,
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: { initialInterval: Math.min(10_000, (heartbeatSeconds * 1000) / 3), backoffCoefficient: 2, maximumInterval: '5m', maximumAttempts: 10 },
  });
  const shortWork = proxyActivities<Activities>({
    ...queue,
    startToCloseTimeout: '5m',
    retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '1m', maximumAttempts: 10 },
  });
  return { longWork, shortWork };
}

export interface PipelineOptions extends RestoreSelection {
  mode: RestoreMode;
  rule: ApprovalRule;
  keepScratch: boolean;
  applyGlobals: boolean;
}

/**
 * The one pipeline behind RestoreDrill and Restore (DESIGN.md):
 *
 *   select the backup -> download + verify EVERY artifact, all at once (nothing restored before)
 *   -> wait for `approve-restore` (reminder at half time, `not-approved` at the end) -> decrypt
 *   -> [apply roles] -> create the database empty, pg_restore -> unpack the files -> checks
 *   -> cleanup -> report (JSON + Markdown, phase durations = measured RTO) -> notice on failure.
 *
 * When decryption is allowed at fetch time (a drill with DRILL_DECRYPT_BEFORE_APPROVAL, or a run
 * already approved) each artifact is downloaded, hashed and decrypted in one streaming pass; the
 * plaintext is used only after the stored bytes' sha256 matched the manifest. A drill unpacks
 * its files while pg_restore runs.
 *
 * No plaintext before approval: a production Restore decrypts only after it (its roles plan is
 * read from the globals artifact in memory); a drill decrypts before it when
 * DRILL_DECRYPT_BEFORE_APPROVAL (the default), for a shorter wait once approved.
 *
 * Download to assets runs on ONE host (workflows/on-one-host.ts), whose staging holds the files;
 * a host lost on the way: the chain starts again from the download on a live host (an approval
 * already given still counts). Planning, checks and the report use the shared queue.
 *
 * `cancel-restore` stops it at any phase; the cleanup and the report always run. A failure
 * fails the workflow after the report is stored; `not-approved` and `cancelled` complete it.
 */
export async function runRestorePipeline(options: PipelineOptions): Promise<RestoreResult> {
  const heartbeatSeconds = heartbeatTimeoutSeconds(options.heartbeatTimeoutSeconds, DEFAULT_HEARTBEAT_TIMEOUT_SECONDS);
  const { longWork, shortWork } = activitiesFor(heartbeatSeconds);
  const hostSeconds = hostTimeoutSeconds(options.hostTimeoutSeconds);
  const info = workflowInfo();
  const run = { workflowId: info.workflowId, runId: info.runId };
  const startedAtMs = Date.now();
  const label = options.mode === 'drill' ? 'RestoreDrill' : 'Restore';

  const phases: PhaseTiming[] = [];
  let current: { phase: RestorePhase; startedAtMs: number } = { phase: 'selecting', startedAtMs };
  let plan: RestorePlan | undefined;
  let plain: PlainDigests = {};
  let globals: GlobalsPlan | undefined;
  let overlayPlan: OverlayPlan | undefined;
  let overlayResult: OverlayReport['result'];
  const overlayReport = (): OverlayReport | undefined =>
    overlayPlan && { backupId: overlayPlan.id, kind: overlayPlan.kind, generatedAt: overlayPlan.generatedAt, ...(overlayResult ? { result: overlayResult } : {}) };
  let deadline: string | undefined;
  let chainHost: { hostId: string; shortWork: ReturnType<typeof activitiesFor>['shortWork'] } | undefined;
  const hostsLost: string[] = [];
  let decryption: RestoreStatus['decryption'];
  let checks: CheckResult[] = [];
  let failure: { step: string; cause: string } | undefined;
  let cancelRequest: CancelRestoreSignal | undefined;
  let reportKeys: string[] = [];
  let databaseStarted = false;
  let databaseComplete = false;
  let kept = false;

  const desk = createApprovalDesk({ mode: options.mode, rule: options.rule, phase: () => current.phase, verify: (input) => shortWork.verifyApprovals(input) });
  const approvals = () => desk.state();
  const enter = (phase: RestorePhase) => {
    phases.push({ phase: current.phase, startedAt: new Date(current.startedAtMs).toISOString(), durationMs: Date.now() - current.startedAtMs });
    current = { phase, startedAtMs: Date.now() };
  };
  const status = (): RestoreStatus => ({
    mode: options.mode,
    phase: current.phase,
    startedAt: new Date(startedAtMs).toISOString(),
    elapsedMs: Date.now() - startedAtMs,
    ...(plan
      ? {
          repository: plan.repository,
          backup: { id: plan.backup.id, kind: plan.backup.kind, generatedAt: plan.backup.generatedAt },
          database: plan.database,
          ...(plan.assetDir ? { assetDir: plan.assetDir } : {}),
        }
      : {}),
    approvals: (() => {
      const statement = desk.statement();
      return { ...approvals(), preApproved: plan?.preApproved ?? false, ...(deadline ? { deadline } : {}), ...(statement ? { statement } : {}) };
    })(),
    ...(overlayPlan ? { overlay: overlayReport() } : {}),
    ...(chainHost ? { host: chainHost.hostId } : {}),
    hostsLost: [...hostsLost],
    ...(decryption ? { decryption } : {}),
    ...(globals ? { globals: { ...globals, apply: options.applyGlobals } } : {}),
    phases: [...phases],
    checks,
    ...(failure ? { failure } : {}),
    reportKeys,
  });

  const pipeline = new CancellationScope();
  setHandler(approveRestoreSignal, (payload: unknown) => desk.receive(payload));
  setHandler(cancelRestoreSignal, (payload?: unknown) => {
    cancelRequest = cancelDetails(payload);
    pipeline.cancel();
  });
  setHandler(restoreStatusQuery, status);

  const waitForApproval = async (approving: RestorePlan, timeoutMs: number): Promise<boolean> => {
    deadline = new Date(Date.now() + timeoutMs).toISOString();
    // What the approvers sign (src/restore/approval-statement.ts): this run, backup, target and roles plan.
    const fields = {
      ...run,
      mode: options.mode,
      backupId: approving.backup.id,
      repository: approving.repository,
      database: approving.database,
      ...(approving.assetDir ? { assetDir: approving.assetDir } : {}),
      ...(overlayPlan ? { overlayBackupId: overlayPlan.id } : {}),
      ...(globals ? { roles: { apply: options.applyGlobals, create: globals.create, change: globals.change } } : {}),
    };
    return desk.wait(fields, timeoutMs, () => {
      // Not awaited: a slow or failing webhook must not stretch the approval window.
      void shortWork
        .notifyRestore({
          event: 'approval-reminder',
          summary: `${label} ${info.workflowId} is waiting for approve-restore (${describeRule(options.rule)}) until ${deadline}`,
          fields: { workflow_id: info.workflowId, backup_id: approving.backup.id, missing: approvals().missing ?? '-', deadline: deadline ?? '-' },
        })
        .catch(() => undefined);
    });
  };

  let outcome: RestoreOutcome = 'failed';
  let externalCancellation: unknown;
  try {
    await pipeline.run(async () => {
      // Prune never deletes a backup a running drill names in BackupId: name it before reading it.
      if (typeof options.backupId === 'string' && isBackupId(options.backupId)) {
        upsertSearchAttributes([{ key: backupIdSearchAttribute, value: options.backupId }]);
      }
      // Planned on a host: `local` is the local repository of the host that plans, so the
      // chain below starts on that same host.
      const planned = await onOneHost({
        claim: () => shortWork.claimHost(),
        chain: async (host) => ({
          host,
          plan: await activitiesFor(heartbeatSeconds, { taskQueue: host.taskQueue, timeoutSeconds: hostSeconds }).shortWork.planRestore({
            ...run,
            mode: options.mode,
            backupId: options.backupId,
            repository: options.repository,
            kind: options.kind,
            approvalTimeoutSeconds: options.approvalTimeoutSeconds,
          }),
        }),
      });
      plan = planned.plan;
      let plannedOn: HostClaim | undefined = planned.host;
      upsertSearchAttributes([
        { key: backupIdSearchAttribute, value: plan.backup.id },
        { key: backupEnvSearchAttribute, value: plan.backup.env },
        { key: backupKindSearchAttribute, value: plan.backup.kind },
      ]);
      const staged = { ...run, repository: plan.repository, backup: plan.backup };
      const restorePlan = plan;
      let approved = plan.preApproved;
      let waited = false;
      // --overlay (S9's 6-hour RPO): the critical backup is chosen and checked before anything is
      // fetched, on the host that planned (`local` is that host's repository).
      if (options.overlay !== undefined) {
        overlayPlan = await activitiesFor(heartbeatSeconds, { taskQueue: planned.host.taskQueue, timeoutSeconds: hostSeconds }).shortWork.planOverlay({
          ...run,
          repository: plan.repository,
          base: plan.backup,
          overlay: options.overlay,
        });
      }

      const chained = await onOneHost({
        claim: async () => {
          const host = plannedOn ?? (await shortWork.claimHost());
          plannedOn = undefined;
          return host;
        },
        onHostLost: async (lost) => {
          hostsLost.push(lost.hostId);
          chainHost = undefined;
        },
        chain: async (host) => {
          const onHost = activitiesFor(heartbeatSeconds, { taskQueue: host.taskQueue, timeoutSeconds: hostSeconds });
          chainHost = { hostId: host.hostId, shortWork: onHost.shortWork };
          const decrypt = async () => {
            enter('decrypting');
            plain = await onHost.longWork.decryptArtifacts(staged);
            decryption = { finishedAt: new Date(Date.now()).toISOString(), beforeApproval: !approved, host: host.hostId };
          };

          enter('downloading');
          let decrypted = false;
          // Issue 16: when decryption is allowed now, one streaming pass per artifact (download,
          // sha256 of the stored bytes, decrypt) instead of download, then decrypt.
          if ((restorePlan.decryptBeforeApproval || approved) && patched(STREAMING_FETCH_PATCH)) {
            plain = await onHost.longWork.fetchDecryptedArtifacts(staged);
            decryption = { finishedAt: new Date(Date.now()).toISOString(), beforeApproval: !approved, host: host.hostId };
            decrypted = true;
          } else {
            await onHost.longWork.fetchArtifacts(staged);
          }
          if (!decrypted && (restorePlan.decryptBeforeApproval || approved)) {
            await decrypt();
            decrypted = true;
          }
          if (options.mode === 'restore' && restorePlan.backup.artifacts.globals && !globals) globals = await onHost.shortWork.planGlobals({ ...staged, plain });

          if (!waited) {
            enter('awaiting-approval');
            if (!restorePlan.preApproved && !(await waitForApproval(restorePlan, restorePlan.approvalTimeoutMs))) return { approved: false as const };
            waited = true;
            approved = true;
          }
          if (!decrypted) await decrypt();
          if (globals && options.applyGlobals) {
            enter('applying-globals');
            await onHost.longWork.applyGlobals({ ...staged, plain, plan: globals });
          }

          enter('restoring-database');
          databaseStarted = true;
          // Issue 16: a drill unpacks its PDF files while the database is restored. A production
          // Restore keeps the order (files land in RESTORE_ASSET_DIR only after a complete database).
          // The phases stay a partition of the wall time: `restoring-database` covers the
          // concurrent part, `restoring-assets` only the time still waited for the files after it.
          const assetsAlongside =
            options.mode === 'drill' && restorePlan.backup.artifacts.assets && patched(CONCURRENT_ASSETS_PATCH) ? new CancellationScope() : undefined;
          const assetsWork = assetsAlongside?.run(() => onHost.longWork.restoreAssets({ ...staged, plain, mode: options.mode }));
          // Awaited below; an early failure must not count as an unhandled rejection meanwhile.
          assetsWork?.catch(() => undefined);
          try {
            await restoreDatabaseAndOverlay();
          } catch (error) {
            if (assetsWork) {
              // Never leave the unpacking running into the cleanup.
              assetsAlongside!.cancel();
              await assetsWork.catch(() => undefined);
            }
            throw error;
          }
          databaseComplete = true;
          let files;
          if (assetsWork) {
            enter('restoring-assets');
            files = await assetsWork;
          } else if (restorePlan.backup.artifacts.assets) {
            enter('restoring-assets');
            files = await onHost.longWork.restoreAssets({ ...staged, plain, mode: options.mode });
          }
          return { approved: true as const, files };

          async function restoreDatabaseAndOverlay(): Promise<void> {
            await onHost.longWork.restoreDatabase({ ...staged, plain, mode: options.mode, keepOwners: options.applyGlobals });
            if (overlayPlan) {
              enter('overlaying');
              overlayResult = await onHost.longWork.overlayCritical({
                ...run,
                mode: options.mode,
                repository: restorePlan.repository,
                base: restorePlan.backup,
                overlay: overlayPlan,
              });
            }
          }
        },
      });
      if (!chained.approved) {
        outcome = 'not-approved';
        return;
      }
      const files = chained.files;

      enter('checking');
      checks = await longWork.runRestoreChecks({ ...staged, mode: options.mode, ...(files ? { files } : {}), ...(overlayPlan ? { overlayBackupId: overlayPlan.id } : {}) });
      const failed = checks.filter((c) => !c.passed);
      if (failed.length > 0) {
        throw ApplicationFailure.nonRetryable(
          `${failed.length} of ${checks.length} checks failed: ` + failed.map((c) => `${c.kind} ${c.name}: expected ${c.expected}, actual ${c.actual}`).join('; '),
          'RestoreChecksFailed',
        );
      }
      outcome = 'passed';
    });
  } catch (error) {
    if (isCancellation(error)) {
      outcome = 'cancelled';
      if (!cancelRequest) externalCancellation = error;
    } else {
      outcome = 'failed';
      failure = { step: current.phase, cause: errorMessage(error) };
    }
  }

  // What follows records what happened and cleans up: it runs even when the workflow is cancelled.
  await CancellationScope.nonCancellable(async () => {
    if (plan) {
      enter('cleaning-up');
      // A drill drops its scratch database unless asked to keep it; a Restore keeps a complete
      // target (even when a check failed: the report says which) and drops a partial one.
      const dropDatabase = options.mode === 'drill' ? !options.keepScratch : databaseStarted && !databaseComplete;
      const keepFiles = options.mode === 'drill' && options.keepScratch;
      try {
        const cleanUp = { ...run, mode: options.mode, backup: plan.backup, dropDatabase, keepFiles };
        // The files are on the chain's host; a host lost meanwhile keeps its own, and any worker
        // can drop the database.
        const cleaned = chainHost
          ? await chainHost.shortWork.cleanUpRestore(cleanUp).catch((error: unknown) => {
              if (!isHostLost(error)) throw error;
              return shortWork.cleanUpRestore(cleanUp);
            })
          : await shortWork.cleanUpRestore(cleanUp);
        kept = databaseStarted && !cleaned.databaseDropped;
      } catch (error) {
        kept = databaseStarted;
        failure ??= { step: 'cleaning-up', cause: errorMessage(error) };
        if (outcome === 'passed') outcome = 'failed';
      }
    }
    enter('reporting');
    try {
      // Beside the backup, and in the local repository of the run's host when it still answers.
      const report = { report: buildReport() };
      reportKeys = chainHost
        ? await chainHost.shortWork.writeRestoreReport(report).catch((error: unknown) => {
            if (!isHostLost(error)) throw error;
            return shortWork.writeRestoreReport(report);
          })
        : await shortWork.writeRestoreReport(report);
    } catch (error) {
      failure ??= { step: 'reporting', cause: errorMessage(error) };
      if (outcome === 'passed') outcome = 'failed';
    }
    if (outcome === 'failed' || outcome === 'not-approved') {
      await shortWork
        .notifyRestore({
          event: outcome === 'failed' ? 'drill-failed' : 'alert',
          summary:
            outcome === 'failed'
              ? `${label} ${info.workflowId} failed at ${failure?.step ?? '?'}`
              : `${label} ${info.workflowId} was not approved in time: nothing was restored`,
          fields: {
            workflow_id: info.workflowId,
            backup_id: plan?.backup.id ?? '-',
            failed_step: failure?.step ?? '-',
            error: failure?.cause ?? '-',
            report: reportKeys.join(', ') || '-',
          },
        })
        .catch(() => undefined);
    }
  });
  enter(outcome);

  if (outcome === 'failed') {
    throw ApplicationFailure.create({
      type: options.mode === 'drill' ? 'RestoreDrillFailed' : 'RestoreFailed',
      message: `${label} failed at ${failure?.step ?? '?'}: ${failure?.cause ?? 'unknown cause'}`,
      nonRetryable: true,
    });
  }
  if (externalCancellation) throw externalCancellation;
  return {
    outcome,
    ...(plan ? { backupId: plan.backup.id, database: plan.database } : {}),
    checks,
    rtoMs: measuredRto(phases, plan?.backup.kind).measuredMs,
    reportKeys,
  };

  function buildReport(): RestoreReport {
    const finished = Date.now();
    const timings = [...phases];
    return {
      format: REPORT_FORMAT,
      mode: options.mode,
      id: reportIdFor(info.workflowId, new Date(startedAtMs)),
      workflowId: info.workflowId,
      env: plan?.backup.env ?? '-',
      outcome,
      startedAt: new Date(startedAtMs).toISOString(),
      finishedAt: new Date(finished).toISOString(),
      ...(plan
        ? {
            repository: plan.repository,
            backup: plan.backup,
            generation: {
              backupId: plan.backup.id,
              generatedAt: plan.backup.generatedAt,
              ...(plan.backup.artifacts.db ? { database: plan.backup.artifacts.db.key } : {}),
              ...(plan.backup.artifacts.assets ? { assets: plan.backup.artifacts.assets.key } : {}),
            },
          }
        : {}),
      target: {
        ...(plan && databaseStarted ? { database: plan.database } : {}),
        ...(plan?.assetDir && databaseComplete ? { assetDir: plan.assetDir } : {}),
        kept,
      },
      approvals: { ...approvals(), preApproved: plan?.preApproved ?? false },
      ...(chainHost ? { host: chainHost.hostId } : {}),
      ...(hostsLost.length > 0 ? { hostsLost: [...hostsLost] } : {}),
      ...(decryption ? { decryption } : {}),
      ...(globals ? { globals: { ...globals, applied: options.applyGlobals && databaseStarted } } : {}),
      ...(overlayPlan ? { overlay: overlayReport() } : {}),
      phases: timings,
      rto: measuredRto(timings, plan?.backup.kind),
      checks,
      ...(failure ? { failure } : {}),
      ...(outcome === 'cancelled' ? { cancellation: cancelRequest ?? { reason: 'the workflow was cancelled' } } : {}),
    };
  }
}

function cancelDetails(payload: unknown): CancelRestoreSignal {
  if (payload === null || typeof payload !== 'object') return {};
  const { by, reason } = payload as { by?: unknown; reason?: unknown };
  return {
    ...(typeof by === 'string' ? { by: by.slice(0, 100) } : {}),
    ...(typeof reason === 'string' ? { reason: reason.slice(0, 500) } : {}),
  };
}

/** The innermost cause: an activity's failure names the activity; its cause says what went wrong. */
function errorMessage(error: unknown): string {
  let current: unknown = error;
  while (current instanceof ActivityFailure && current.cause) current = current.cause;
  return current instanceof Error ? current.message : String(current);
}
