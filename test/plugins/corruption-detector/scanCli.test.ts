/**
 * `recovery-agent scan`: bits flipped at random in a store made through the library API are all
 * found by `scan --store DIR --json`, and nothing else is; exit codes 0 / 4 / 2; `--config` scans
 * every store and reports each; the text output and --help.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { cli } from '../../helpers/cli.js';
import { repoRoot } from '../../helpers/paths.js';
import { flipBits, makeStore } from './damage.js';

const tmpDir = () => mkdtempSync(path.join(os.tmpdir(), 'ra-scan-cli-'));

interface ScanJson {
  pagesScanned: number;
  bytesScanned: number;
  corrupt: Array<{ pageId: number; reason: string }>;
}

describe('recovery-agent scan', () => {
  it('finds every flipped bit of a store made through the library API, and nothing else (--json, exit 4)', async () => {
    const dir = path.join(tmpDir(), 'store');
    const pages = 400;
    await makeStore(dir, pages, 8192);
    const clean = cli(['scan', '--store', dir, '--json']);
    assert.equal(clean.status, 0, clean.stderr);
    const cleanJson = JSON.parse(clean.stdout) as ScanJson;
    assert.equal(cleanJson.pagesScanned, pages);
    assert.equal(cleanJson.bytesScanned, pages * 8192);
    assert.deepEqual(cleanJson.corrupt, []);

    const hit = flipBits(dir, 8192, pages, 25, Date.now() & 0xffff);
    const r = cli(['scan', '--store', dir, '--json', '--workers', '2']);
    assert.equal(r.status, 4, r.stderr);
    const json = JSON.parse(r.stdout) as ScanJson;
    assert.equal(json.pagesScanned, pages);
    assert.deepEqual(json.corrupt, [...hit].map(([pageId, reason]) => ({ pageId, reason })).sort((a, b) => a.pageId - b.pageId));
    // No progress bar when stderr is not a terminal: only the failure's line, as for any error.
    assert.equal(r.stderr, `recovery-agent: corruption found (store: ${hit.size} corrupt page(s)) [RA_ERR_PAGE_CORRUPT]\n`);
    assert.deepEqual((json as unknown as { error: unknown }).error, { code: 'RA_ERR_PAGE_CORRUPT', message: `corruption found (store: ${hit.size} corrupt page(s))`, exitCode: 4 });

    const text = cli(['scan', '--store', dir, '--workers', '1']);
    assert.equal(text.status, 4);
    assert.match(text.stdout, new RegExp(`${pages} pages \\(3\\.13 MiB\\) in .*: 25 corrupt page\\(s\\)`));
    for (const [pageId, reason] of hit) assert.match(text.stdout, new RegExp(`page ${pageId} +${reason}\\n`));
  });

  it('exits 2 with a clear message for a truncated store, a missing store and bad usage', async () => {
    const base = tmpDir();
    const dir = path.join(base, 'store');
    await makeStore(dir, 16, 4096);
    truncateSync(path.join(dir, 'pages.db'), 4096 * 16 - 100);
    const truncated = cli(['scan', '--store', dir, '--json']);
    assert.equal(truncated.status, 2);
    // --json: the error as JSON on stdout too (cli/main.ts), no scan result.
    assert.equal((JSON.parse(truncated.stdout) as { error: { code: string; exitCode: number } }).error.exitCode, 2);
    assert.match(truncated.stderr, /pages\.db is 65436 bytes, not a multiple of the page size 4096 .*and truncated/);

    const missing = cli(['scan', '--store', path.join(base, 'nope')]);
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /holds no page store/);

    const neither = cli(['scan']);
    assert.equal(neither.status, 2);
    assert.match(neither.stderr, /exactly one of --store DIR or --config FILE/);
    assert.equal(cli(['scan', '--store', dir, '--workers', '0']).status, 2);
    const pageSize = cli(['scan', '--store', dir, '--page-size', '5000']);
    assert.equal(pageSize.status, 2);
    assert.match(pageSize.stderr, /--page-size must be a power of two/);

    const help = cli(['scan', '--help']);
    assert.equal(help.status, 0);
    assert.match(help.stdout, /Usage: recovery-agent scan/);
    assert.match(help.stdout, /Exit codes: 0 every page is sound; 4 corruption found; 2/);
  });

  it('--config scans every store and reports each; corruption wins the exit code', async () => {
    const base = tmpDir();
    await makeStore(path.join(base, 'a'), 32, 4096);
    await makeStore(path.join(base, 'b'), 48, 4096);
    const cfg = path.join(base, 'agent.yaml');
    writeFileSync(cfg, `stores:\n  - { id: a, path: ./a }\n  - { id: b, path: ./b }\n`);
    const ok = cli(['scan', '--config', cfg, '--json']);
    assert.equal(ok.status, 0, ok.stderr);
    const okJson = JSON.parse(ok.stdout) as { stores: Array<ScanJson & { id: string; path: string }> };
    assert.deepEqual(okJson.stores.map((s) => [s.id, s.path, s.pagesScanned, s.corrupt.length]), [['a', path.join(base, 'a'), 32, 0], ['b', path.join(base, 'b'), 48, 0]]);

    const hit = flipBits(path.join(base, 'b'), 4096, 48, 3, 99);
    writeFileSync(cfg, `stores:\n  - { id: a, path: ./a }\n  - { id: b, path: ./b }\n  - { id: gone, path: ./gone }\n`);
    const r = cli(['scan', '--config', cfg, '--json']);
    assert.equal(r.status, 4, r.stderr);
    const json = JSON.parse(r.stdout) as { stores: Array<ScanJson & { id: string; error?: { code: string; message: string } }> };
    const b = json.stores.find((s) => s.id === 'b')!;
    assert.deepEqual(b.corrupt.map((c) => c.pageId), [...hit.keys()].sort((x, y) => x - y));
    const gone = json.stores.find((s) => s.id === 'gone')!;
    assert.equal(gone.error?.code, 'RA_ERR_STORE_NOT_FOUND');
    assert.match(r.stderr, /store gone: .*holds no page store/);

    // Only the missing store is wrong now: exit 2.
    writeFileSync(cfg, `stores:\n  - { id: a, path: ./a }\n  - { id: gone, path: ./gone }\n`);
    const text = cli(['scan', '--config', cfg]);
    assert.equal(text.status, 2);
    assert.match(text.stdout, /store a \(.*\): 32 pages .*: clean/);

    writeFileSync(cfg, `stores: []\n`);
    const none = cli(['scan', '--config', cfg]);
    assert.equal(none.status, 2);
    assert.match(none.stderr, /no pagestore stores to scan/);
  });

  it('scans a store while the demo writer runs: exit 0, no corrupt page', async () => {
    const dir = path.join(tmpDir(), 'store');
    const writer = spawn(process.execPath, [path.join(repoRoot(), 'dist', 'examples', 'demo-writer.js'), '--store', dir, '--rate', '500', '--pages', '256'], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      await new Promise<void>((resolve, reject) => {
        let out = '';
        writer.stdout!.on('data', (d: Buffer) => {
          out += d.toString();
          if (/accounts created|invariant holds/.test(out)) resolve();
        });
        writer.once('exit', (code) => reject(new Error(`demo writer exited (${code}) before it was ready: ${out}`)));
      });
      for (let i = 0; i < 3; i++) {
        const r = cli(['scan', '--store', dir, '--json', '--workers', '2']);
        assert.equal(r.status, 0, r.stderr);
        const json = JSON.parse(r.stdout) as ScanJson;
        assert.equal(json.pagesScanned, 256);
        assert.deepEqual(json.corrupt, []);
      }
    } finally {
      if (writer.exitCode === null && writer.signalCode === null) {
        const exited = new Promise((r) => writer.once('exit', r));
        writer.kill('SIGTERM');
        await exited;
      }
    }
  });
});
