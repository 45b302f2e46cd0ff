/**
 * Whether the native addon files changed under a running crash harness.
 *
 * A process that has loaded a shared library maps the file itself. Copying a new build over it in
 * place (`cp x.node native/`, which truncates and rewrites the same inode) changes the code under
 * every running process that loaded it: the harness and its writers then die with SIGSEGV or
 * SIGBUS at their next call into the addon, with nothing on stderr. That is how one run of the
 * harness (seed 7, branch fix-analysis16) ended, and it looks exactly like a memory bug in the
 * addon (reproduced: a `cp` of the very same build over the loaded file crashed the harness).
 * `npm run build:native` replaces the file by a rename, which running processes never see; the
 * processes started after it load the new build, though, so the run then tests two builds.
 *
 * The harness records the files' identity at its start and, when a child dies by a signal other
 * than its SIGKILL, says whether they changed since: a crash to blame on the bench, not the code.
 */
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The signals a process dies of when its mapped code or data goes bad under it. */
export const MAPPING_SIGNALS: readonly string[] = ['SIGSEGV', 'SIGBUS', 'SIGILL'];

interface FileIdentity {
  ino: number;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
}

/** The directory the addon loads from (native/ beside native/index.js). */
function addonDir(): string {
  return path.dirname(fileURLToPath(import.meta.resolve('recovery-agent/native')));
}

export class AddonWatch {
  private constructor(
    readonly dir: string,
    private readonly files: ReadonlyMap<string, FileIdentity>,
  ) {}

  /** Records the identity of every `*.node` file in `dir` (default: the addon's directory). */
  static start(dir: string = addonDir()): AddonWatch {
    return new AddonWatch(dir, identities(dir));
  }

  /**
   * How the `*.node` files differ from the start, as a sentence (each file rewritten in place,
   * replaced, added or removed), or null when none changed.
   */
  changes(): string | null {
    const now = identities(this.dir);
    const found: string[] = [];
    for (const [name, was] of this.files) {
      const is = now.get(name);
      if (!is) found.push(`${name} removed`);
      else if (is.ino !== was.ino) found.push(`${name} replaced by another file (new processes load another build)`);
      else if (is.size !== was.size || is.mtimeMs !== was.mtimeMs || is.ctimeMs !== was.ctimeMs) {
        found.push(`${name} rewritten in place (the processes that had loaded it run on changed code)`);
      }
    }
    for (const name of now.keys()) if (!this.files.has(name)) found.push(`${name} added`);
    return found.length > 0 ? `the native addon changed during the run: ${found.join('; ')} (in ${this.dir})` : null;
  }

  /**
   * For a child that ended by `signal`: a note to append to its violation when the signal is one
   * a changed mapping causes and the addon did change; '' otherwise.
   */
  noteFor(signal: string | null): string {
    if (signal === null || !MAPPING_SIGNALS.includes(signal)) return '';
    const changed = this.changes();
    return changed ? ` [${changed}: a crash of the bench, not a finding about the code]` : '';
  }
}

function identities(dir: string): Map<string, FileIdentity> {
  const out = new Map<string, FileIdentity>();
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.node'));
  } catch {
    return out;
  }
  for (const name of names) {
    try {
      const s = statSync(path.join(dir, name));
      out.set(name, { ino: s.ino, size: s.size, mtimeMs: s.mtimeMs, ctimeMs: s.ctimeMs });
    } catch {
      // Removed between the listing and the stat: absent.
    }
  }
  return out;
}
