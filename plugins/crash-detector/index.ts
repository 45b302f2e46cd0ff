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

// The supervisor's contract (core/contracts/ProcessSupervisor.ts) comes with the plugin's types.
export * from './types.js';

export default definePlugin({
  id: 'crash-detector',
  contractVersion: '^1.0.0',
  errorCodes: processErrors,
  deps: { metrics: optional(Metrics), gates: many(ProcessGate), storePaths: optional(StorePaths) },
  provides: [ProcessSupervisor, StatusSection, Detector],
  register(ctx, { metrics, gates, storePaths }) {
    // A process with `store:` gets that store's current path in RECOVERY_AGENT_STORE_PATH (StorePaths.ts).
    const configured = new Map(ctx.config.stores.map((s) => [s.id, s.path]));
    const storePath = (id: string) => storePaths?.pathOf(id) ?? configured.get(id);
    const supervisor = new Supervisor(ctx.config.processes, ctx.log, ctx.config.agent.dataDir, undefined, gates, storePath);
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
