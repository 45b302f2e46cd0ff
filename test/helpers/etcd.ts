/**
 * A real etcd (Debian's etcd-server, v3.4) for the cluster tests: one member on free loopback
 * ports in a temp dir, killed and removed after. `needTool('etcd')` fails the test loudly when
 * it is not installed (.ci/run installs etcd-server).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { needTool } from './tools.js';

export interface EtcdServer {
  /** The client URL, `http://127.0.0.1:PORT`. */
  readonly url: string;
  readonly process: ChildProcess;
  /** SIGKILLs etcd (idempotent) and waits for it to exit. */
  kill(): Promise<void>;
  /** Kills it and removes its data dir. */
  close(): Promise<void>;
}

/** Listens on `port` (0: any) of 127.0.0.1 and releases it: the port, or null when taken. */
function tryPort(port: number): Promise<number | null> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(null));
    srv.listen(port, '127.0.0.1', () => {
      const got = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(got));
    });
  });
}

/**
 * A port free on 127.0.0.1 now, below the kernel's ephemeral range (32768–60999 here). Tests
 * keep these ports for a node's life and bind them again when they restart it (host death); a
 * port from the ephemeral range can meanwhile become the local end of some outgoing connection,
 * and the restarted agent then fails with EADDRINUSE (a CI run of the cluster chaos test did).
 * Ports below the range are never handed out that way.
 */
export async function freePort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = await tryPort(20_000 + Math.floor(Math.random() * 12_000));
    if (port !== null) return port;
  }
  const any = await tryPort(0);
  if (any === null) throw new Error('no free port on 127.0.0.1');
  return any;
}

/** Starts etcd and waits until it answers its /health. */
export async function startEtcd(): Promise<EtcdServer> {
  needTool('etcd', 'etcd-server');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ra-etcd-'));
  const [client, peer] = [await freePort(), await freePort()];
  const url = `http://127.0.0.1:${client}`;
  const peerUrl = `http://127.0.0.1:${peer}`;
  const log = fs.openSync(path.join(dir, 'etcd.log'), 'a');
  const child = spawn(
    'etcd',
    [
      '--name', 'ra-test', '--data-dir', path.join(dir, 'data'),
      '--listen-client-urls', url, '--advertise-client-urls', url,
      '--listen-peer-urls', peerUrl, '--initial-advertise-peer-urls', peerUrl,
      '--initial-cluster', `ra-test=${peerUrl}`, '--initial-cluster-state', 'new',
      // Fast enough for 2 s leases; etcd's smallest lease TTL follows the election timeout.
      '--heartbeat-interval', '100', '--election-timeout', '1000',
    ],
    { stdio: ['ignore', log, log] },
  );
  fs.closeSync(log);
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once('exit', () => { exited = true; resolve(); }));
  const kill = async (): Promise<void> => {
    if (!exited) child.kill('SIGKILL');
    await exit;
  };
  const close = async (): Promise<void> => {
    await kill();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const end = Date.now() + 15_000;
  for (;;) {
    if (exited) {
      const tail = fs.readFileSync(path.join(dir, 'etcd.log'), 'utf8').slice(-2000);
      await close();
      throw new Error(`etcd exited at start:\n${tail}`);
    }
    try {
      const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(1000) });
      if (res.ok && ((await res.json()) as { health?: string }).health === 'true') break;
    } catch {
      // not up yet
    }
    if (Date.now() > end) {
      await close();
      throw new Error(`etcd did not become healthy at ${url} within 15 s`);
    }
    await sleep(50);
  }
  return { url, process: child, kill, close };
}
