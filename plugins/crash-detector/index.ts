/**
 * CrashDetector: supervises the processes of the config's `processes:` section. Started ones
 * (command) are watched through their exit event; attached ones (pidFile) by pid and start
 * time every 100 ms; either may heartbeat (UDP datagrams, HTTP or TCP probes). Publishes
 * `process-crash` and `process-hang` (P1) on the failure bus, and provides the
 * `ProcessSupervisor` that the restart-process action and the HTTP API use.
 */
import { Detector, isDetector } from '../../core/contracts/Detector.js';
import type { FailureSink } from '../../core/contracts/Failure.js';
import { StatusSection, isStatusSection } from '../../core/contracts/StatusSection.js';
import { definePlugin, many, optional } from '../../core/plugin.js';
import { ProcessGate } from '../../core/contracts/ProcessGate.js';
import { StorePaths } from '../../core/contracts/StorePaths.js';
import { processErrors } from './errors.js';
import { Metrics } from '../../core/tokens.js';
import { counterFromTotals } from '../../core/metricsHelpers.js';
import { Supervisor } from './supervisor.js';
import { ProcessSupervisor, isProcessSupervisor } from '../../core/contracts/ProcessSupervisor.js';
import { PROCESS_CRASH, PROCESS_HANG } from './types.js';
import { StorageEngine } from '../../core/contracts/StorageEngine.js';
import { storesWithPageEngines } from '../../core/engines.js';
import { withOwner } from '../../core/contracts/PageEngine.js';
import { raError } from '../../core/errors.js';
import type { WorkReading } from './workWatch.js';

// The supervisor's contract (core/contracts/ProcessSupervisor.ts) comes with the plugin's types.
export * from './types.js';

export default definePlugin({
  id: 'crash-detector',
  contractVersion: '^1.0.0',
  errorCodes: processErrors,
  deps: { metrics: optional(Metrics), gates: many(ProcessGate), storePaths: optional(StorePaths), engines: many(StorageEngine) },
  provides: [ProcessSupervisor, StatusSection, Detector],
  register(ctx, { metrics, gates, storePaths, engines }) {
    // A process with `store:` gets that store's current path in RECOVERY_AGENT_STORE_PATH (StorePaths.ts).
    const configured = new Map(ctx.config.stores.map((s) => [s.id, s.path]));
    const storePath = (id: string) => storePaths?.pathOf(id) ?? configured.get(id);
    // The work probe (workWatch.ts) asks a writer's store owner for its commit count, through its engine's page face.
    const pageEngines = new Map(storesWithPageEngines(engines, ctx.config.stores).usable.map((s) => [s.id, s.pageEngine]));
    const readWork = async (storeId: string, timeoutMs: number): Promise<WorkReading> => {
      const engine = pageEngines.get(storeId);
      const dir = storePath(storeId);
      if (engine === undefined || dir === undefined) throw raError('RA_ERR_CONTROL_UNAVAILABLE', `store "${storeId}" has no engine with a page face: no work probe`);
      const s = await withOwner(engine, dir, (o) => o.status(), { timeoutMs });
      // An owner that does not count its commits cannot be judged: no reading, never a hang.
      if (s.commits === undefined) throw raError('RA_ERR_CONTROL_UNAVAILABLE', `the owner of store "${storeId}" reports no commit count: no work probe`);
      return { commits: s.commits, activeTransactions: s.activeTransactions, lockWaits: s.lockWaits ?? 0 };
    };
    const supervisor = new Supervisor(ctx.config.processes, ctx.log, ctx.config.agent.dataDir, undefined, gates, storePath, pageEngines.size > 0 ? readWork : null);
    let started = false;
    // The host starts it with a sink on the failure bus once the plugin is up, and stops it first.
    const detector: Detector = {
      id: ctx.id,
      kinds: [PROCESS_CRASH, PROCESS_HANG],
      async start(sink: FailureSink) {
        if (started) return;
        started = true;
        try {
          await supervisor.start(sink);
        } catch (err) {
          // The host does not call stop() for a detector that failed to start: leave nothing behind.
          await supervisor.shutdown();
          throw err;
        }
      },
      stop: () => supervisor.shutdown(),
    };
    ctx.provide(ProcessSupervisor, supervisor, isProcessSupervisor);
    ctx.provide(StatusSection, { name: 'processes', snapshot: () => supervisor.list() }, isStatusSection);
    if (metrics) {
      counterFromTotals(metrics, 'recovery_agent_process_restarts_total', 'Restarts of supervised processes', ['process'], () =>
        supervisor.list().map((p) => ({ labels: { process: p.id }, value: p.restarts })),
      );
      counterFromTotals(metrics, 'recovery_agent_process_crashes_total', 'Crashes of supervised or attached processes', ['process'], () =>
        supervisor.list().map((p) => ({ labels: { process: p.id }, value: p.crashes })),
      );
    }
    ctx.provide(Detector, detector, isDetector);
  },
});
