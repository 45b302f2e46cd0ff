import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { repoRoot } from './paths.js';

export const BIN = path.join(repoRoot(), 'bin', 'recovery-agent.js');

/** Runs the CLI to completion. */
export function cli(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: options.cwd ?? repoRoot(), env: options.env ?? process.env, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}


/**
 * Runs the CLI with one of its output pipes closed by the reader before the CLI writes (what
 * `… | head -1` does once it has its line): the CLI's writes to it fail with EPIPE. Resolves
 * with its exit and what it wrote to the other stream.
 */
export function cliWithClosedPipe(args: string[], closed: 'stdout' | 'stderr', options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<{ status: number | null; signal: NodeJS.Signals | null; other: string }> {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: options.cwd ?? repoRoot(), env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  child[closed]!.destroy();
  const open = closed === 'stdout' ? child.stderr! : child.stdout!;
  let other = '';
  open.on('data', (d: Buffer) => (other += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
  return new Promise((resolve) => {
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, other });
    });
  });
}
