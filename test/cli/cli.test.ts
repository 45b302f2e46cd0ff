import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { BIN, cli, cliWithClosedPipe } from '../helpers/cli.js';
import { fixture, repoRoot } from '../helpers/paths.js';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'ra-cli-'));

describe('cli', () => {
  it('prints its version and help for every command', () => {
    const pkg = JSON.parse(readFileSync(path.join(repoRoot(), 'package.json'), 'utf8')) as { version: string };
    for (const flag of ['--version', '-V']) {
      const v = cli([flag]);
      assert.equal(v.status, 0);
      assert.equal(v.stdout, `${pkg.version}\n`);
    }
    // Beside anything else, --version is commander's (which prints the version all the same).
    assert.equal(cli(['--version', 'scan']).stdout.trim(), pkg.version);
    for (const args of [['--help'], ['run', '--help'], ['init', '--help'], ['config', '--help'], ['config', 'check', '--help'], ['config', 'schema', '--help']]) {
      const r = cli(args);
      assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stdout, /Usage: recovery-agent/);
    }
  });

  it('help, --version and usage errors load commander and the command line only: no agent, plugin, pool, logger, config schema or addon', () => {
    const loads = (args: string[]): { status: number | null; urls: string[] } => {
      const trace = path.join(tmp(), 'imports.txt');
      writeFileSync(trace, '');
      const r = spawnSync(process.execPath, ['--import', pathToFileURL(fixture('traceImports.js')).href, BIN, ...args], {
        env: { ...process.env, RA_TRACE_IMPORTS: trace }, encoding: 'utf8', timeout: 60_000,
      });
      return { status: r.status, urls: readFileSync(trace, 'utf8').split('\n').filter((u) => u && !u.includes('/dist/test/fixtures/')) };
    };
    const beyondCommandLine = (u: string) => /\/node_modules\/(?!commander\/)/.test(u) || /\/dist\/(plugins|core\/(?!errors\.js$))/.test(u) || /\/native\//.test(u);
    for (const args of [['--help'], ['scan', '--help'], ['run', '--help'], ['snapshot', 'prune', '--help'], ['repair', '--help'], ['frobnicate'], ['scan', '--workers', 'x']]) {
      const { status, urls } = loads(args);
      assert.ok(status === 0 || status === 2, `${args.join(' ')} exited ${status}`);
      assert.ok(urls.some((u) => u.endsWith('/dist/cli/main.js')), `${args.join(' ')}: the trace saw the command line load (${urls.join(' ')})`);
      assert.deepEqual(urls.filter(beyondCommandLine), [], args.join(' '));
    }
    // A command's own modules load when it runs, not before.
    assert.ok(loads(['config', 'schema']).urls.some((u) => u.endsWith('/dist/core/config/schema.js')));
    // --version is answered by bin/ itself, from package.json: not even commander loads.
    for (const flag of ['--version', '-V']) {
      const { status, urls } = loads([flag]);
      assert.equal(status, 0);
      assert.deepEqual(urls.filter((u) => !u.startsWith('node:')), [pathToFileURL(BIN).href], flag);
    }
  });

  it('the help of run, init and config check/schema states the exit codes', () => {
    for (const args of [['run'], ['init'], ['config', 'check'], ['config', 'schema']]) {
      const r = cli([...args, '--help']);
      assert.equal(r.status, 0);
      assert.match(r.stdout, /Exit codes: 0 /, `${args.join(' ')} --help`);
    }
  });

  it('exits 2 on an unknown command or a missing option', () => {
    assert.equal(cli(['frobnicate']).status, 2);
    const r = cli(['run']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--config/);
  });

  it('--json: a failing command writes its error to stdout as JSON too, with the text on stderr and the same exit code', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ra-json-err-'));
    const bad = path.join(dir, 'bad.yaml');
    writeFileSync(bad, 'stores: [{ id: a, path: /x }, { id: a, path: /y }]\n');
    const cases: Array<{ args: string[]; code: string; status: number; message: RegExp }> = [
      { args: ['config', 'check', bad, '--json'], code: 'RA_ERR_CONFIG', status: 2, message: /stores\[1\]\.id: expected store ids to be unique/ },
      { args: ['recover', '--store', path.join(dir, 'nostore'), '--json'], code: 'RA_ERR_STORE_NOT_FOUND', status: 2, message: /holds no page store/ },
      { args: ['snapshot', 'list', '--json', '--bogus'], code: 'RA_ERR_USAGE', status: 2, message: /unknown option '--bogus'/ },
    ];
    for (const c of cases) {
      const r = cli(c.args);
      assert.equal(r.status, c.status, `${c.args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, c.message, `${c.args.join(' ')}: the text stays on stderr`);
      const out = JSON.parse(r.stdout) as { error: { code: string; message: string; exitCode: number } };
      assert.equal(out.error.code, c.code, c.args.join(' '));
      assert.equal(out.error.exitCode, c.status, c.args.join(' '));
      assert.match(out.error.message, c.message, c.args.join(' '));
    }
    // Without --json, stdout stays empty.
    assert.equal(cli(['recover', '--store', path.join(dir, 'nostore')]).stdout, '');
  });

  it('config check: 0 on a good file, 2 naming the key on a bad one', () => {
    const dir = tmp();
    const good = path.join(dir, 'good.yaml');
    writeFileSync(good, 'agent: { workers: 1 }\n');
    const ok = cli(['config', 'check', good]);
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /valid/);
    const json = cli(['config', 'check', good, '--json']);
    assert.equal((JSON.parse(json.stdout) as { agent: { workers: number } }).agent.workers, 1);

    const bad = path.join(dir, 'bad.yaml');
    writeFileSync(bad, 'agent:\n  maxConcurrentRecoveries: lots\n');
    const r = cli(['config', 'check', bad]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /agent\.maxConcurrentRecoveries/);
    assert.match(r.stderr, /"lots"/);
    assert.equal(cli(['config', 'check', path.join(dir, 'missing.yaml')]).status, 2);
  });

  it('config schema prints JSON Schema', () => {
    const r = cli(['config', 'schema']);
    assert.equal(r.status, 0);
    const schema = JSON.parse(r.stdout) as { properties: Record<string, unknown> };
    assert.ok(schema.properties.agent);
  });

  it('init writes a commented sample that passes config check, and will not overwrite', () => {
    const dir = tmp();
    const file = path.join(dir, 'agent.yaml');
    assert.equal(cli(['init', file]).status, 0);
    assert.match(readFileSync(file, 'utf8'), /^# recovery-agent configuration/);
    assert.equal(cli(['config', 'check', file]).status, 0);
    const again = cli(['init', file]);
    assert.equal(again.status, 2);
    assert.match(again.stderr, /--force/);
    assert.equal(cli(['init', file, '--force']).status, 0);
    assert.match(cli(['init']).stdout, /maxConcurrentRecoveries/);
  });

  it('run: Ctrl-C (SIGINT to the whole process group) stops the agent and its plugin processes cleanly', async () => {
    const dir = tmp();
    const cfg = path.join(dir, 'agent.yaml');
    writeFileSync(cfg, `agent: { dataDir: ./state, workers: 1, logLevel: info, http: { listen: '127.0.0.1:0' } }
plugins:
  - module: ${path.join(repoRoot(), 'examples', 'plugins', 'notify-file.js')}
    options: { path: ./notes.log }
`);
    const outFile = path.join(dir, 'stdout.log');
    // Its own process group, as a shell gives a foreground job: the group is what Ctrl-C signals.
    const child = spawn(process.execPath, [BIN, 'run', '--config', cfg], { stdio: ['ignore', openSync(outFile, 'w'), 'ignore'], detached: true });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      for (let waited = 0; !readFileSync(outFile, 'utf8').includes('recovery-agent ready'); waited += 50) {
        if (waited > 30_000) assert.fail(`not ready in time: ${readFileSync(outFile, 'utf8').slice(-2000)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      process.kill(-child.pid!, 'SIGINT');
    } catch (err) {
      process.kill(-child.pid!, 'SIGKILL');
      throw err;
    }
    assert.equal(await exited, 0);
    const lines = readFileSync(outFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { level: number; msg: string; plugin?: string });
    assert.deepEqual(lines.filter((l) => l.level >= 50).map((l) => `${l.plugin}: ${l.msg}`), [], 'no plugin failed on the way down');
    assert.ok(lines.some((l) => l.plugin === 'notify-file' && l.msg === 'plugin stopped'));
  });

  it('run: logs one line when ready, and exits 0 on SIGTERM after stopping plugins in reverse', async () => {
    const dir = tmp();
    const cfg = path.join(dir, 'agent.yaml');
    writeFileSync(
      cfg,
      `agent: { dataDir: ./state, workers: 1, logLevel: info, http: { listen: '127.0.0.1:0' } }
plugins:
  - module: ${path.join(repoRoot(), 'examples', 'plugins', 'notify-file.js')}
    options: { path: ./notes.log }
`,
    );
    // stdout goes to a file, not a pipe: a pipe would hold the event loop open by itself and
    // hide a daemon that exits as soon as it is ready.
    const outFile = path.join(dir, 'stdout.log');
    const child = spawn(process.execPath, [BIN, 'run', '--config', cfg], { stdio: ['ignore', openSync(outFile, 'w'), 'pipe'] });
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    let exited: number | null | undefined;
    child.on('exit', (c) => (exited = c));
    let out = '';
    try {
      for (let waited = 0; !out.includes('recovery-agent ready'); waited += 50) {
        if (waited > 20_000) assert.fail(`not ready in time: ${out} ${err}`);
        await new Promise((r) => setTimeout(r, 50));
        out = readFileSync(outFile, 'utf8');
      }
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(exited, undefined, 'the daemon keeps running until signalled');
      const ready = out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'recovery-agent ready')!;
      const plugins = ready.plugins as string[];
      assert.ok(plugins.includes('notify-file:running'), plugins.join(' '));
      assert.ok(plugins.every((p) => p.endsWith(':running')), plugins.join(' '));
      assert.deepEqual(ready.failed, []);
      child.kill('SIGTERM');
    } catch (err) {
      // Never leave the daemon running when an assertion fails before the SIGTERM.
      child.kill('SIGKILL');
      throw err;
    }
    const code = exited !== undefined ? exited : await new Promise<number | null>((resolve) => child.on('exit', resolve));
    assert.equal(code, 0, err);
    assert.doesNotMatch(err, /Warning|FSTDEP/, 'the daemon starts without a (deprecation) warning');
    out = readFileSync(outFile, 'utf8');
    const msgs = out.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { msg: string }).msg);
    assert.ok(msgs.indexOf('plugin stopped') > msgs.indexOf('recovery-agent ready'));
    assert.equal(msgs.at(-1), 'stopped');
  });

  it('run: exits 2 on a bad config before starting anything', () => {
    const dir = tmp();
    const cfg = path.join(dir, 'agent.yaml');
    writeFileSync(cfg, 'stores: [{ id: x }]\n');
    const r = cli(['run', '--config', cfg]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /stores\[0\]\.path/);
  });

  it('output into a pipe closed early (`… | head -1`): no EPIPE stack trace, the exit code of the command', async () => {
    const out = await cliWithClosedPipe(['config', 'schema'], 'stdout');
    assert.equal(out.signal, null);
    assert.equal(out.other, '', 'nothing on stderr');
    assert.equal(out.status, 0);
    const dir = tmp();
    const err = await cliWithClosedPipe(['config', 'check', path.join(dir, 'missing.yaml')], 'stderr');
    assert.equal(err.status, 2, 'still the exit code of a bad config');
    assert.equal(err.other, '');
  });

  it('run: a daemon whose stdout (its log) is closed keeps running and stops cleanly', async () => {
    const dir = tmp();
    const port = await freePort();
    const cfg = path.join(dir, 'agent.yaml');
    writeFileSync(cfg, `agent: { dataDir: ./state, workers: 1, logLevel: info, http: { listen: '127.0.0.1:${port}' } }\n`);
    const child = spawn(process.execPath, [BIN, 'run', '--config', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.destroy();
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    let exit: number | null | undefined;
    child.on('exit', (c) => (exit = c));
    try {
      let healthy = false;
      for (let waited = 0; !healthy; waited += 100) {
        assert.equal(exit, undefined, `the daemon died: ${err}`);
        if (waited > 20_000) assert.fail(`no answer on /health in time: ${err}`);
        await new Promise((r) => setTimeout(r, 100));
        healthy = await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.status === 200, () => false);
      }
      // It has logged (and lost) its start-up lines by now; it must still be alive and serving.
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(exit, undefined, `the daemon died: ${err}`);
      child.kill('SIGTERM');
    } catch (e) {
      child.kill('SIGKILL');
      throw e;
    }
    const code = exit !== undefined ? exit : await new Promise<number | null>((resolve) => child.on('exit', resolve));
    assert.equal(code, 0, err);
    assert.doesNotMatch(err, /EPIPE|Error/);
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}
