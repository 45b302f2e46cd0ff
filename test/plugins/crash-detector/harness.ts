/**
 * Runs the crash detector (and optionally restart-process) in a plugin host of its own, with a
 * failure bus that records every failure and the monotonic time it was delivered.
 */
import 'reflect-metadata';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { container as rootContainer, type DependencyContainer } from 'tsyringe';
import type { AgentConfig } from '../../../core/config/schema.js';
import { validateConfig } from '../../../cli/config.js';
import type { Failure } from '../../../core/contracts/Failure.js';
import { HealingAction, type HealingContext } from '../../../core/contracts/HealingAction.js';
import { ProcessGate, isProcessGate } from '../../../core/contracts/ProcessGate.js';
import { StorageEngine, isStorageEngine } from '../../../core/contracts/StorageEngine.js';
import { definePlugin } from '../../../core/plugin.js';
import type { Logger } from 'pino';
import { FailureBus as FailureBusImpl } from '../../../core/failureBus.js';
import { PluginHost } from '../../../core/pluginHost.js';
import { FailureBus } from '../../../core/tokens.js';
import crashDetector, { ProcessSupervisor } from '../../../plugins/crash-detector/index.js';
import restartProcess from '../../../plugins/restart-process/index.js';
import type { ChildSpec } from '../../fixtures/crash-detector-child.js';
import { captureLogger } from '../../helpers/logCapture.js';
import { fixture, repoRoot } from '../../helpers/paths.js';

export interface Delivered {
  readonly failure: Failure;
  /** process.hrtime.bigint() when the bus delivered it (CLOCK_MONOTONIC, comparable across processes). */
  readonly at: bigint;
}

export type Harness = Awaited<ReturnType<typeof startDetector>>;

/** A process entry that runs the test child with `spec`. */
export function childProcessConfig(id: string, spec: ChildSpec, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { id, command: process.execPath, args: [fixture('crash-detector-child.js'), JSON.stringify(spec)], ...extra };
}

export async function startDetector(processes: unknown[], options: { stores?: unknown[]; restartAction?: boolean; gates?: ProcessGate[]; engines?: StorageEngine[] } = {}) {
  const cap = captureLogger();
  // A dataDir of its own: the supervisor records what it starts there (for a restarted agent to adopt).
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'ra-crash-detector-'));
  const config: AgentConfig = validateConfig({ agent: { workers: 1, dataDir }, stores: options.stores ?? [], processes }, path.join(repoRoot(), 'crash-detector-test.yaml'), {});
  const container: DependencyContainer = rootContainer.createChildContainer();
  const bus = new FailureBusImpl(cap.log);
  container.register(FailureBus, { useValue: bus });
  const delivered: Delivered[] = [];
  bus.subscribe((failure) => delivered.push({ failure, at: process.hrtime.bigint() }));
  const host = new PluginHost({ container, log: cap.log, config, startTimeoutMs: 5000, stopTimeoutMs: 10_000 });
  if (options.gates) {
    const gates = options.gates;
    host.add(
      definePlugin({
        id: 'test-gates',
        contractVersion: '^1.0.0',
        provides: [ProcessGate],
        register(ctx) {
          for (const g of gates) ctx.provide(ProcessGate, g, isProcessGate);
        },
      }),
    );
  }
  if (options.engines) {
    const engines = options.engines;
    // The engines the work probe reaches a store's owner through (the page store's, in the agent).
    host.add(
      definePlugin({
        id: 'test-engines',
        contractVersion: '^1.0.0',
        provides: [StorageEngine],
        register(ctx) {
          for (const e of engines) ctx.provide(StorageEngine, e, isStorageEngine);
        },
      }),
    );
  }
  host.add(crashDetector);
  if (options.restartAction) host.add(restartProcess);
  const status = await host.startAll();
  const failed = status.filter((s) => s.state !== 'running');
  if (failed.length > 0) throw new Error(`plugins failed: ${JSON.stringify(failed)}`);
  const supervisor = container.resolve(ProcessSupervisor);
  let stopped = false;
  return {
    config,
    bus,
    supervisor,
    delivered,
    lines: cap.lines,
    action: (): HealingAction => container.resolveAll(HealingAction).find((a) => a.id === 'restart-process')!,
    failures: (kind?: string): Failure[] => delivered.map((d) => d.failure).filter((f) => kind === undefined || f.kind === kind),
    async stop(): Promise<void> {
      if (stopped) return;
      stopped = true;
      await host.stopAll();
      await container.dispose();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Polls `check` every 5 ms until it returns a value other than undefined, null or false; throws after `timeoutMs`. */
export async function waitFor<T>(check: () => T | undefined | null | false, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = check();
    if (v !== undefined && v !== null && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A TCP port that was free a moment ago. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** True while a process with this pid exists (zombies included). */
export function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A minimal HealingContext for calling an action directly. */
export function healingContext(log: Logger, options: Record<string, unknown> = {}, signal: AbortSignal = new AbortController().signal): HealingContext {
  return { signal, log, options };
}
