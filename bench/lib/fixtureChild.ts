/**
 * Runs a bench fixture (`node FIXTURE ARGS…`) and resolves with its first stdout line, parsed as
 * JSON, the time from spawn to that line, and the child (which goes on running).
 */
import { spawn } from 'node:child_process';

export function firstLine<T>(fixture: string, args: string[]): Promise<{ value: T; ms: number; child: ReturnType<typeof spawn> }> {
  const t0 = performance.now();
  const child = spawn(process.execPath, [fixture, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let buf = '';
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl >= 0) resolve({ value: JSON.parse(buf.slice(0, nl)) as T, ms: performance.now() - t0, child });
    });
    child.once('exit', (code, sig) => reject(new Error(`${args[0]} child ended (${sig ?? code}) before reporting`)));
  });
}
