/**
 * An agent (pagestore, crash detector, health monitor, self-healer, the memory actions) that
 * supervises test/fixtures/healmemApp.ts owning one store; the test's health and rule settings.
 */
import 'reflect-metadata';
import { existsSync, mkdirSync, mkdtempSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent } from '../../../core/agent.js';
import { validateConfig } from '../../../cli/config.js';
import type { RecoveryRecord } from '../../../core/orchestrator/journal.js';
import appAction from '../../../plugins/app-action/index.js';
import clearCaches from '../../../plugins/clear-caches/index.js';
import crashDetector from '../../../plugins/crash-detector/index.js';
import gracefulRestart from '../../../plugins/graceful-restart/index.js';
import healthMonitor from '../../../plugins/health-monitor/index.js';
import pagestore from '../../../plugins/pagestore/index.js';
import selfHealer from '../../../plugins/self-healer/index.js';
import { captureLogger } from '../../helpers/logCapture.js';
import { fixture } from '../../helpers/paths.js';

export interface AppSpec {
  readPages?: boolean;
  leakBytesPerSec?: number;
  limitBytes?: number;
}

export async function startAgent(app: AppSpec, extra: { health?: Record<string, unknown>; healing?: Record<string, unknown>; process?: Record<string, unknown> } = {}) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ra-healmem-'));
  const store = path.join(dir, 'store');
  const marks = path.join(dir, 'marks');
  mkdirSync(marks);
  const spec = { store, marks, ...app };
  const config = validateConfig(
    {
      agent: { dataDir: path.join(dir, 'agent'), workers: 1, http: { enabled: false } },
      stores: [{ id: 'demo', path: store }],
      processes: [{ id: 'app', command: process.execPath, args: [fixture('healmemApp.js'), JSON.stringify(spec)], store: 'demo', stopGrace: '3s', restart: { backoff: { initial: '20ms' } }, ...extra.process }],
      health: extra.health ?? { enabled: false },
      ...(extra.healing ? { healing: extra.healing } : {}),
    },
    path.join(dir, 'agent.yaml'),
    {},
  );
  const cap = captureLogger();
  const agent = new Agent({ config, builtins: [pagestore, crashDetector, healthMonitor, selfHealer, clearCaches, gracefulRestart, appAction], log: cap.log });
  await agent.start();
  return {
    agent,
    store,
    marks,
    lines: cap.lines,
    /** Pids of the instances that got ready, in order. */
    ready: () => readdirSync(marks).filter((f) => f.startsWith('ready-')).map((f) => Number(f.slice(6))),
    oomed: () => readdirSync(marks).filter((f) => f.startsWith('oom-')),
    leaked: () => existsSync(path.join(marks, 'leaked')),
    recoveries: (kind: string): RecoveryRecord[] => agent.orchestrator.recentRecoveries().filter((r) => r.kind === kind),
    stop: () => agent.stop(),
  };
}

/** Polls `fn` until it returns something truthy, or throws naming `what`. */
export async function waitFor<T>(fn: () => T | Promise<T>, ms: number, what: string): Promise<NonNullable<T>> {
  const end = performance.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (performance.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(50);
  }
}
