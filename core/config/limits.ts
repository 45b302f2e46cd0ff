/**
 * What a config file may cost to read. A config is a few KiB of YAML; without limits a file
 * that is huge (a wrong path, a log file), endless (/dev/zero) or built to explode (YAML aliases
 * nested into a "billion laughs", flow collections nested 100 000 deep) would run for minutes
 * and end the agent on heap or stack exhaustion instead of with a config error naming the file.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { Lexer } from 'yaml';
import { isRaError, raError } from '../errors.js';

/** The largest config accepted, in bytes (1 MiB: hundreds of times a real one). */
export const MAX_CONFIG_BYTES = 1 << 20;

/**
 * YAML alias expansions allowed (the yaml library's `maxAliasCount`: uses of an anchor times the
 * aliases inside it). Sharing a block among a few processes stays far below it.
 */
export const MAX_ALIAS_COUNT = 100;

/**
 * Lines a config may have. The YAML parser's check for duplicate keys is quadratic in the keys
 * of one mapping (60 000 keys: a minute); a real config has a few hundred lines.
 */
export const MAX_CONFIG_LINES = 10_000;

/** Flow collections (`[ ]`, `{ }`) nested deeper than this are refused before parsing. */
export const MAX_FLOW_DEPTH = 64;

/**
 * Reads a config file, refusing one over MAX_CONFIG_BYTES: by its size before reading when it is
 * a regular file, else (a device, a pipe) as soon as more than that has been read.
 */
export function readConfigFile(file: string): string {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    throw raError('RA_ERR_CONFIG', `cannot read config file ${file}: ${(err as Error).message}`, { cause: err });
  }
  try {
    const st = fstatSync(fd);
    if (st.isFile() && st.size > MAX_CONFIG_BYTES) throw tooLarge(file, `${st.size} bytes`);
    const buf = Buffer.alloc(MAX_CONFIG_BYTES + 1);
    let length = 0;
    for (;;) {
      const n = readSync(fd, buf, length, buf.byteLength - length, null);
      if (n === 0) break;
      length += n;
      if (length > MAX_CONFIG_BYTES) throw tooLarge(file, `more than ${MAX_CONFIG_BYTES} bytes`);
    }
    return buf.toString('utf8', 0, length);
  } catch (err) {
    if (isRaError(err)) throw err;
    throw raError('RA_ERR_CONFIG', `cannot read config file ${file}: ${(err as Error).message}`, { cause: err });
  } finally {
    closeSync(fd);
  }
}

/** Refuses YAML text over MAX_CONFIG_BYTES or nesting flow collections over MAX_FLOW_DEPTH. */
export function checkConfigText(text: string, source: string): void {
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > MAX_CONFIG_BYTES) throw tooLarge(source, `${bytes} bytes`);
  let lines = 1;
  for (let at = text.indexOf('\n'); at >= 0; at = text.indexOf('\n', at + 1)) lines++;
  if (lines > MAX_CONFIG_LINES) {
    throw raError('RA_ERR_CONFIG', `${source}: config has ${lines} lines; a config may have at most ${MAX_CONFIG_LINES}`, { details: { maxLines: MAX_CONFIG_LINES } });
  }
  // The lexer keeps quoted scalars, comments and block scalars whole, so a bracket inside them
  // is no token of its own; it is linear, where the parser's cost grows with the depth.
  let depth = 0;
  for (const token of new Lexer().lex(text)) {
    if (token === '[' || token === '{') {
      if (++depth > MAX_FLOW_DEPTH) {
        throw raError('RA_ERR_CONFIG', `${source}: not a usable config: flow collections ([ ] and { }) nested more than ${MAX_FLOW_DEPTH} deep`, { details: { maxDepth: MAX_FLOW_DEPTH } });
      }
    } else if (token === ']' || token === '}') {
      depth = Math.max(0, depth - 1);
    }
  }
}

/** The error for an alias expansion over MAX_ALIAS_COUNT (the yaml library throws a bare ReferenceError). */
export function aliasBomb(source: string, cause: unknown): Error {
  return raError('RA_ERR_CONFIG', `${source}: not a usable config: its YAML aliases expand more than ${MAX_ALIAS_COUNT} times, as an alias bomb ("billion laughs") does; use fewer aliases`, { cause, details: { maxAliasCount: MAX_ALIAS_COUNT } });
}

function tooLarge(file: string, size: string): Error {
  return raError('RA_ERR_CONFIG', `${file}: config file is ${size}; a config may be at most ${MAX_CONFIG_BYTES} bytes (1 MiB)`, { details: { maxBytes: MAX_CONFIG_BYTES } });
}
