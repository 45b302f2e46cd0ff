// Running code as another user (nobody) to test what that user can reach. The test process must
// be root to switch uid; where it cannot, these helpers fail the test with the reason, never skip
// it: a check of file and socket permissions that did not run proves nothing.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface OtherUser {
  name: string;
  uid: number;
  gid: number;
}

/** User `nobody` from /etc/passwd, after checking this process can become it. */
export function nobody(): OtherUser {
  const euid = process.geteuid?.();
  if (euid !== 0) {
    assert.fail(`this test switches to user "nobody" to check what another user can reach; it must run as root (euid is ${euid}). It is not skipped: run the suite as root (the CI machine does)`);
  }
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('nobody:'));
  if (!line) assert.fail('no user "nobody" in /etc/passwd: this test needs another user to connect as');
  const [, , uid, gid] = line.split(':');
  return { name: 'nobody', uid: Number(uid), gid: Number(gid) };
}

/**
 * Source of a CommonJS prober (run with `node -e`, so the repository's files need not be readable
 * by the other user): connects to the socket at argv[1] over and over from argv[2] parallel loops,
 * sends a control-socket `status` request on each connection, until its stdin ends; then prints
 * { uid, attempts, connects, replies, errors }.
 */
const PROBER = `
const net = require('node:net');
const file = process.argv[1];
const loops = Number(process.argv[2]);
const r = { uid: process.getuid(), attempts: 0, connects: 0, replies: 0, errors: {} };
let stop = false;
process.stdin.on('end', () => { stop = true; });
process.stdin.resume();
const once = () => new Promise((resolve) => {
  r.attempts++;
  const s = net.createConnection(file);
  let done = false;
  const fin = () => { if (done) return; done = true; clearTimeout(t); s.destroy(); resolve(); };
  const t = setTimeout(fin, 500);
  s.on('connect', () => { r.connects++; s.write('{"op":"status"}\\n'); });
  s.on('data', (d) => { if (String(d).includes('"ok":true')) r.replies++; fin(); });
  s.on('error', (e) => { r.errors[e.code] = (r.errors[e.code] || 0) + 1; fin(); });
  s.on('close', fin);
});
const loop = async () => { while (!stop) await once(); };
process.stdout.write(JSON.stringify({ ready: true, uid: r.uid }) + '\\n');
Promise.all(Array.from({ length: loops }, loop)).then(() => process.stdout.write(JSON.stringify(r) + '\\n'));
`;

export interface ProbeResult {
  uid: number;
  attempts: number;
  connects: number;
  replies: number;
  errors: Record<string, number>;
}

export interface Prober {
  child: ChildProcess;
  /** Ends the probing and resolves to what it saw. */
  stop(): Promise<ProbeResult>;
}

/** Starts the prober as `user` against the socket `file`; resolves once it runs as that user. */
export async function startProber(user: OtherUser, file: string, loops = 4): Promise<Prober> {
  let child: ChildProcess;
  try {
    child = spawn(process.execPath, ['-e', PROBER, file, String(loops)], { uid: user.uid, gid: user.gid, stdio: ['pipe', 'pipe', 'pipe'], cwd: '/' });
  } catch (err) {
    assert.fail(`cannot start a process as ${user.name} (uid ${user.uid}): ${(err as Error).message}`);
  }
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  const spawnError = new Promise<Error>((resolve) => child.on('error', resolve));
  const ready = await Promise.race([
    (async () => {
      for (let waited = 0; !out.includes('\n'); waited += 10) {
        if (waited > 10_000) return `no "ready" from the prober in 10 s: ${err}`;
        await new Promise((r) => setTimeout(r, 10));
      }
      return JSON.parse(out.split('\n')[0]!) as { uid: number };
    })(),
    spawnError.then((e) => `cannot start a process as ${user.name} (uid ${user.uid}): ${e.message}`),
    exited.then((code) => `the prober as ${user.name} exited (${code}) before probing: ${err}`),
  ]);
  if (typeof ready === 'string') assert.fail(ready);
  assert.equal(ready.uid, user.uid, `the prober runs as ${user.name}`);
  return {
    child,
    async stop() {
      child.stdin!.end();
      const code = await exited;
      assert.equal(code, 0, `prober: ${err}`);
      return JSON.parse(out.trim().split('\n').at(-1)!) as ProbeResult;
    },
  };
}
