import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { cli } from '../helpers/cli.js';

/** A real listening socket on 127.0.0.1, held by this test process. */
async function occupiedPort(): Promise<{ port: number; server: Server }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve));
  return { port: (server.address() as { port: number }).port, server };
}

describe('run with agent.http.listen on a port in use', () => {
  it('fails with RA_ERR_HTTP_LISTEN (exit 2, as --help says) before any supervised process starts', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ra-port-'));
    const marker = path.join(dir, 'started');
    const { port, server } = await occupiedPort();
    try {
      const cfg = path.join(dir, 'agent.yaml');
      // The process leaves a marker as its first act: its absence proves it never started.
      writeFileSync(cfg, `agent: { dataDir: ./state, workers: 1, logLevel: info, http: { listen: '127.0.0.1:${port}' } }
processes:
  - id: marker
    command: /bin/sh
    args: ['-c', 'touch ${marker}; sleep 30']
`);
      // spawnSync: the CLI must end by itself, not wait for the port.
      const r = cli(['run', '--config', cfg]);
      assert.equal(r.status, 2, `${r.stdout}\n${r.stderr}`);
      assert.match(r.stderr, new RegExp(`agent\\.http\\.listen: 127\\.0\\.0\\.1:${port} is in use by another process`));
      assert.match(r.stderr, /RA_ERR_HTTP_LISTEN/);
      // Give a wrongly started child the time to write its marker before looking.
      await new Promise((res) => setTimeout(res, 300));
      assert.equal(existsSync(marker), false, 'the supervised process was started before the port was checked');
      const help = cli(['run', '--help']);
      assert.match(help.stdout, /2 bad usage or config.*agent\.http\.listen/s);
    } finally {
      server.close();
    }
  });
});
