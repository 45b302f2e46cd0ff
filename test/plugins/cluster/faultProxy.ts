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
 */
import net from 'node:net';

export interface FaultProxy {
  readonly port: number;
  /** `127.0.0.1:<port>`. */
  readonly address: string;
  readonly isCut: boolean;
  cut(): void;
  heal(): void;
  close(): Promise<void>;
}

export async function startProxy(target: { host: string; port: number }, port = 0): Promise<FaultProxy> {
  let cut = false;
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
    client.pipe(upstream);
    upstream.pipe(client);
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
      return cut;
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
      if (!cut) return;
      cut = false;
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
