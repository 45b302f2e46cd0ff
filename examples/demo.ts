/**
 * `npm start`: the agent on the embedded demo store, with the demo writer running transactions
 * against it. The agent starts first (it recovers the store if a previous run was killed), then
 * the writer. SIGINT or SIGTERM stops the writer, then the agent; the exit code is 0 when both
 * stopped cleanly.
 *
 * Try: in another terminal, `kill -9` the demo writer's pid, then `npm start` again — the agent
 * rolls back what was in flight and the writer finds its invariant intact.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const node = process.execPath;

function start(name: string, args: string[]): ChildProcess {
  const child = spawn(node, args, { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  child.stdout!.pipe(process.stdout, { end: false });
  child.on('exit', (code, signal) => process.stderr.write(`demo: ${name} (pid ${child.pid}) exited ${signal ?? code}\n`));
  return child;
}

function exited(child: ChildProcess): Promise<number> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode ?? 1);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code ?? 1)));
}

const agent = start('agent', ['bin/recovery-agent.js', 'run', '--config', 'examples/demo.yaml']);
await new Promise<void>((resolve, reject) => {
  let seen = '';
  const onData = (d: Buffer) => {
    seen += d.toString();
    if (seen.includes('recovery-agent ready')) {
      agent.stdout!.off('data', onData);
      resolve();
    }
  };
  agent.stdout!.on('data', onData);
  agent.once('exit', (code) => reject(new Error(`the agent exited with ${code} before it was ready`)));
});
const writer = start('demo writer', ['dist/examples/demo-writer.js', '--store', 'var/demo/store', '--rate', '50']);
process.stderr.write(`demo: agent pid ${agent.pid}, demo writer pid ${writer.pid}; Ctrl-C stops both\n`);

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  writer.kill('SIGTERM');
  const w = await exited(writer);
  agent.kill('SIGTERM');
  const a = await exited(agent);
  process.exit(a === 0 && (w === 0 || writer.signalCode === 'SIGKILL') ? 0 : 1);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
agent.on('exit', () => {
  if (!stopping) {
    writer.kill('SIGTERM');
    process.exitCode = 1;
  }
});
