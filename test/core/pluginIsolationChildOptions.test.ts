// How a plugin's child process is started: its V8 limits as explicit flags (the stack kept
// within the real stack, so it cannot segfault), the agent's module-resolution flags and no
// others, and NODE_OPTIONS without the flags that would override the limits or open an inspector.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { pluginEnv, pluginExecArgv, stackSizeKb } from '../../core/isolation/childProcessOptions.js';

const limits8M = 'Max cpu time              unlimited            unlimited            seconds\nMax stack size            8388608              unlimited            bytes\n';

describe('plugin isolation: the child process options', () => {
  it('turns the configured limits into V8 flags, keeps resolution flags of the agent and drops the rest', () => {
    const args = pluginExecArgv({ maxOldGenerationSizeMb: 64, maxYoungGenerationSizeMb: 48, stackSizeMb: 4 }, [
      '--inspect=9229',
      '--max-old-space-size=4096',
      '--conditions',
      'acme',
      '--import=tsx',
      '--preserve-symlinks',
      '--expose-gc',
    ]);
    assert.deepEqual(args.slice(0, 2), ['--max-old-space-size=64', '--max-semi-space-size=16']);
    assert.deepEqual(args.slice(-4), ['--conditions', 'acme', '--import=tsx', '--preserve-symlinks']);
    assert.ok(!args.some((a) => a.startsWith('--inspect') || a === '--max-old-space-size=4096' || a === '--expose-gc'), JSON.stringify(args));
  });

  it('keeps --stack-size (KiB) within three quarters of the stack rlimit, and leaves it out when that is unknown', () => {
    assert.equal(stackSizeKb(4, limits8M), 4096);
    assert.equal(stackSizeKb(64, limits8M), 6144);
    assert.equal(stackSizeKb(4, limits8M.replace('8388608', '1048576')), 768);
    assert.equal(stackSizeKb(4, limits8M.replace('8388608', 'unlimited')), 4096);
    assert.equal(stackSizeKb(4, 'Max open files 1024 1024 files\n'), undefined);
  });

  it('a child started with the largest stackSizeMb still turns deep recursion into a RangeError, not a crash', () => {
    const stack = pluginExecArgv({ stackSizeMb: 64 }).find((a) => a.startsWith('--stack-size='));
    const out = execFileSync(process.execPath, [...(stack ? [stack] : []), '-e', 'const f = (n) => f(n + 1) + 1; try { f(0) } catch (e) { console.log(e.name) }'], { encoding: 'utf8' });
    assert.equal(out.trim(), 'RangeError');
  });

  it('takes the limit and inspector flags out of NODE_OPTIONS and keeps the others', () => {
    const env = pluginEnv({ PATH: '/bin', NODE_OPTIONS: '--max-old-space-size=4096 --inspect-port 9230 --max_semi_space_size=64 --enable-source-maps --inspect' });
    assert.equal(env.NODE_OPTIONS, '--enable-source-maps');
    assert.equal(env.PATH, '/bin');
    assert.equal('NODE_OPTIONS' in pluginEnv({ NODE_OPTIONS: '--inspect-brk' }), false);
  });
});
