/**
 * addonWatch.ts, and the crash it explains: a native addon rewritten in place under a process
 * that loaded it kills that process by a signal at its next call into it, even when the new
 * bytes are the very same build; replaced by a rename, it does not. That is the harness's
 * unexplained "writer ended with signal SIGSEGV" of branch fix-analysis16 (seed 7), where the
 * harness process itself died of SIGSEGV right after: both had the addon loaded.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { xxh3 } from 'recovery-agent/native';
import { AddonWatch, MAPPING_SIGNALS } from './addonWatch.js';

const nativeDir = path.dirname(fileURLToPath(import.meta.resolve('recovery-agent/native')));
const addonName = readdirSync(nativeDir).find((n) => n.endsWith('.node'));
const work = mkdtempSync(path.join(os.tmpdir(), 'ra-addon-watch-'));
after(() => rmSync(work, { recursive: true, force: true }));

/**
 * A child that loads `file` as an addon, says "ready", and once a line arrives on stdin hashes
 * with it and prints the hash. Resolves to how it ended and what it printed.
 */
function loadThenCall(file: string, between: () => void): Promise<{ code: number | null; signal: string | null; out: string }> {
  const script = `
    const { createRequire } = require('node:module');
    const addon = createRequire(${JSON.stringify(file)})(${JSON.stringify(file)});
    addon.xxh3(new Uint8Array(64));
    process.stdout.write('ready\\n');
    process.stdin.once('data', () => {
      process.stdout.write(String(addon.xxh3(new Uint8Array(4096).fill(7))) + '\\n');
      process.exit(0);
    });`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let told = false;
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    if (!told && out.includes('ready\n')) {
      told = true;
      between();
      child.stdin.write('go\n');
    }
  });
  return new Promise((resolve) => child.once('close', (code, signal) => resolve({ code, signal, out })));
}

describe('the native addon changed under running processes', { skip: addonName ? false : 'no built addon (npm run build:native)' }, () => {
  const built = path.join(nativeDir, addonName ?? 'missing.node');
  const want = String(xxh3(new Uint8Array(4096).fill(7)));

  it('rewritten in place with the same bytes, the process that loaded it dies by a signal at its next call', async () => {
    const copy = path.join(work, 'inplace.node');
    copyFileSync(built, copy);
    const bytes = readFileSync(copy);
    const ino = statSync(copy).ino;
    // What `cp build.node native/` does to an existing file: truncate it and write it again.
    const r = await loadThenCall(copy, () => writeFileSync(copy, bytes));
    assert.equal(statSync(copy).ino, ino, 'the same file, rewritten');
    assert.equal(r.code, null, `exited with ${r.code}, output ${JSON.stringify(r.out)}`);
    assert.ok(MAPPING_SIGNALS.includes(r.signal ?? ''), `ended by ${r.signal}`);
  });

  it('replaced by a rename (what npm run build:native does), the process goes on with the old one', async () => {
    const copy = path.join(work, 'renamed.node');
    copyFileSync(built, copy);
    const r = await loadThenCall(copy, () => {
      copyFileSync(built, `${copy}.tmp`);
      renameSync(`${copy}.tmp`, copy);
    });
    assert.deepEqual({ code: r.code, signal: r.signal }, { code: 0, signal: null });
    assert.equal(r.out, `ready\n${want}\n`);
  });
});

describe('AddonWatch', () => {
  it('says nothing while the files are unchanged, and names an in-place rewrite, a replacement, an addition and a removal', () => {
    const dir = mkdtempSync(path.join(work, 'watched-'));
    // Three addon files and one other file, which is not watched.
    const files = ['a.node', 'b.node', 'c.node'];
    for (const f of files) writeFileSync(path.join(dir, f), `build 1 of ${f}`);
    writeFileSync(path.join(dir, 'index.js'), '');
    const watch = AddonWatch.start(dir);
    assert.equal(watch.changes(), null);
    assert.equal(watch.noteFor('SIGSEGV'), '');
    writeFileSync(path.join(dir, 'index.js'), 'changed');
    assert.equal(watch.changes(), null, 'only *.node files are watched');

    writeFileSync(path.join(dir, 'a.node'), 'build 2 of a.node');
    writeFileSync(path.join(dir, 'b.tmp'), 'build 2 of b.node');
    renameSync(path.join(dir, 'b.tmp'), path.join(dir, 'b.node'));
    unlinkSync(path.join(dir, 'c.node'));
    writeFileSync(path.join(dir, 'd.node'), 'new');
    const changes = watch.changes() ?? '';
    assert.match(changes, /a\.node rewritten in place/);
    assert.match(changes, /b\.node replaced by another file/);
    assert.match(changes, /c\.node removed/);
    assert.match(changes, /d\.node added/);
    assert.ok(changes.includes(dir), changes);
  });

  it('notes a change only for the signals a changed mapping causes', () => {
    const d = mkdtempSync(path.join(work, 'signals-'));
    writeFileSync(path.join(d, 'a.node'), 'build 1');
    const watch = AddonWatch.start(d);
    writeFileSync(path.join(d, 'a.node'), 'build 1 again');
    for (const s of MAPPING_SIGNALS) assert.match(watch.noteFor(s), /rewritten in place.*not a finding about the code/);
    assert.equal(watch.noteFor('SIGKILL'), '');
    assert.equal(watch.noteFor('SIGABRT'), '');
    assert.equal(watch.noteFor(null), '');
  });
});
