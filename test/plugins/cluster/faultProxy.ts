/**
 * A TCP fault proxy for the cluster fault tests: a link (an agent to an etcd member, the
 * replicas to a primary's replication port) goes through one, so a test can partition it and
 * heal it without root or network namespaces.
 *
 * `cut()` is a partition, not a refusal: bytes stop flowing both ways on the open connections
 * (neither end is told: no FIN, no RST, just as when a cable is pulled), and new connections
 * are accepted but never forwarded. So a client finds out only by its own time limits — the
 * case the lease deadline exists for (etcd3 #110: a dead stream can look alive). `heal()`
 * destroys what was stranded (their ends then see a reset, as TCP would after the partition's
 * retransmissions gave up) and forwards again.
 *
 * `cutOneWay(dir)` is an asymmetric partition: bytes stop in one direction only (`to-target`:
 * what the connecting side sends; `from-target`: what the target answers), on the open
 * connections and on new ones, while the other direction flows on. `heal()` ends it as it ends
 * `cut()`. The chaos suite's `primary-cut-asymmetric` (test/chaos/faults/cluster.ts) uses it.
 */
import net from 'node:net';

export interface FaultProxy {
  readonly port: number;
  /** `127.0.0.1:<port>`. */
  readonly address: string;
  readonly isCut: boolean;
  cut(): void;
  cutOneWay(dir: 'to-target' | 'from-target'): void;
  heal(): void;
  close(): Promise<void>;
}

export async function startProxy(target: { host: string; port: number }, port = 0): Promise<FaultProxy> {
  let cut = false;
  /** An asymmetric cut: the direction whose bytes stop (null: none, or a whole `cut`). */
  let oneWay: 'to-target' | 'from-target' | null = null;
  /** Open pairs (client, upstream); a stranded client has no upstream. */
  const pairs = new Set<[net.Socket, net.Socket | null]>();
  const server = net.createServer((client) => {
    client.on('error', () => undefined);
    if (cut) {
      client.pause();
      const pair: [net.Socket, net.Socket | null] = [client, null];
      pairs.add(pair);
      client.once('close', () => pairs.delete(pair));
      return;
    }
    const upstream = net.connect(target.port, target.host);
    upstream.on('error', () => undefined);
    const pair: [net.Socket, net.Socket | null] = [client, upstream];
    pairs.add(pair);
    const end = (): void => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.once('close', end);
    upstream.once('close', end);
    if (oneWay === 'to-target') client.pause();
    else client.pipe(upstream);
    if (oneWay === 'from-target') upstream.pause();
    else upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const bound = (server.address() as net.AddressInfo).port;
  return {
    port: bound,
    address: `127.0.0.1:${bound}`,
    get isCut() {
      return cut || oneWay !== null;
    },
    cutOneWay(dir) {
      if (cut || oneWay !== null) return;
      oneWay = dir;
      for (const [client, upstream] of pairs) {
        const from = dir === 'to-target' ? client : upstream;
        if (!from) continue;
        from.unpipe();
        from.pause();
      }
    },
    cut() {
      if (cut) return;
      cut = true;
      for (const [client, upstream] of pairs) {
        client.unpipe();
        upstream?.unpipe();
        client.pause();
        upstream?.pause();
      }
    },
    heal() {
      if (!cut && oneWay === null) return;
      cut = false;
      oneWay = null;
      for (const [client, upstream] of [...pairs]) {
        client.destroy();
        upstream?.destroy();
      }
      pairs.clear();
    },
    async close() {
      for (const [client, upstream] of pairs) {
        client.destroy();
        upstream?.destroy();
      }
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
