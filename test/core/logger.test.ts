import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { isRaError } from '../../core/errors.js';
import { createLogger, resolveLogFormat, type LoggerOptions } from '../../core/logger.js';

/** What a logger made with `options` writes to a file (not a terminal) for a few records. */
function written(options: LoggerOptions): string {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'ra-log-')), 'log');
  const fd = openSync(file, 'w');
  try {
    const log = createLogger({ ...options, fd });
    log.info({ answer: 42 }, 'agent ready');
    const child = log.child({ plugin: 'crash-detector' }).child({ process: 'writer' }).child({ processPid: 4321 });
    child.warn({ stream: 'stderr' }, 'Error: boom');
    child.warn({ stream: 'stderr' }, '    at main (writer.js:1:1)');
    log.flush();
  } finally {
    closeSync(fd);
  }
  return readFileSync(file, 'utf8');
}

describe('createLogger: JSON lines or readable lines', () => {
  it('auto is JSON when the log is not a terminal (a file here)', () => {
    const lines = written({ format: 'auto', env: {} }).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(lines.map((l) => [l.msg, l.process ?? null, l.processPid ?? null]), [['agent ready', null, null], ['Error: boom', 'writer', 4321], ['    at main (writer.js:1:1)', 'writer', 4321]]);
    assert.equal(typeof lines[0]!.time, 'number');
  });

  it('pretty: local times, the level, who speaks, then the message; each child line says whose it is', () => {
    const out = written({ format: 'pretty', env: {} });
    const lines = out.trimEnd().split('\n');
    assert.ok(!out.includes('{"'), out);
    const first = /^\[(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)\.(\d{3})\] INFO: agent ready$/.exec(lines[0]!);
    assert.ok(first, lines[0]);
    // Local time: read back as local, it is now (not UTC, not epoch milliseconds).
    const [y, mo, d, h, mi, s] = first.slice(1, 7).map(Number) as [number, number, number, number, number, number];
    assert.ok(Math.abs(new Date(y, mo - 1, d, h, mi, s).getTime() - Date.now()) < 10_000, lines[0]);
    assert.equal(lines[1], '    answer: 42');
    assert.match(lines[2]!, /\] WARN: \[crash-detector writer#4321 stderr\] Error: boom$/);
    assert.match(lines[3]!, /\] WARN: \[crash-detector writer#4321 stderr\] {5}at main \(writer\.js:1:1\)$/);
    assert.equal(lines.length, 4, 'the who fields are in the head, not on lines below');
  });

  it('RECOVERY_AGENT_LOG_FORMAT overrides agent.logFormat; an unknown value is a config error', () => {
    assert.equal(JSON.parse(written({ format: 'pretty', env: { RECOVERY_AGENT_LOG_FORMAT: 'json' } }).split('\n')[0]!).msg, 'agent ready');
    assert.match(written({ format: 'json', env: { RECOVERY_AGENT_LOG_FORMAT: 'pretty' } }), /INFO: agent ready/);
    assert.equal(resolveLogFormat(99, 'json', { RECOVERY_AGENT_LOG_FORMAT: '' }), 'json');
    assert.throws(() => resolveLogFormat(1, 'auto', { RECOVERY_AGENT_LOG_FORMAT: 'yaml' }), (err) => isRaError(err) && err.code === 'RA_ERR_CONFIG' && /RECOVERY_AGENT_LOG_FORMAT=yaml: expected one of auto, json, pretty/.test(err.message));
  });
});
