#!/usr/bin/env node
// `npm start`'s build step: runs `npm run build:ts` only when dist/ is not up to date with the
// TypeScript sources, so a start after `npm ci` (whose prepare script builds) or after an earlier
// start goes straight to the agent instead of re-running tsc, which takes half a minute here.
//
// Up to date means: every .ts file that tsconfig.json includes has its .js in outDir, no older
// than the source, tsconfig.json or package-lock.json (new dependencies can change the types);
// and the last build this script ran did not fail (tsc emits despite type errors, so the outputs'
// times alone would let the next start run code that did not type-check). On any doubt (a
// tsconfig this check does not understand), it builds.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const rel = (p) => path.relative(root, p);

function mtimeMs(file) {
  try {
    return statSync(file).mtimeMs;
  } catch {
    return undefined;
  }
}

function* tsFiles(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) yield* tsFiles(p);
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) yield p;
  }
}

/** Why a build is needed, or undefined when dist/ is up to date. */
function staleness(failedMarker) {
  let config;
  try {
    config = JSON.parse(readFileSync(path.join(root, 'tsconfig.json'), 'utf8'));
  } catch (err) {
    return `tsconfig.json is not plain JSON (${err.message})`;
  }
  if (mtimeMs(failedMarker) !== undefined) return 'the last build failed';
  const outDir = path.resolve(root, config.compilerOptions?.outDir ?? 'dist');
  const rootDir = path.resolve(root, config.compilerOptions?.rootDir ?? '.');
  const everyOutputAfter = Math.max(...['tsconfig.json', 'package-lock.json'].map((f) => mtimeMs(path.join(root, f)) ?? 0));
  for (const pattern of config.include ?? []) {
    const m = /^([\w.-]+)\/\*\*\/\*\.ts$/.exec(pattern);
    if (!m) return `tsconfig.json's include pattern ${pattern} is not one this check reads (dir/**/*.ts)`;
    const dir = path.join(root, m[1]);
    if (mtimeMs(dir) === undefined) continue;
    for (const src of tsFiles(dir)) {
      const out = path.join(outDir, path.relative(rootDir, src)).replace(/\.ts$/, '.js');
      const built = mtimeMs(out);
      if (built === undefined) return `${rel(out)} is missing`;
      if (built < Math.max(mtimeMs(src), everyOutputAfter)) return `${rel(out)} is older than ${rel(src)}${built < everyOutputAfter ? ', tsconfig.json or package-lock.json' : ''}`;
    }
  }
  return undefined;
}

const failedMarker = path.join(root, 'dist', '.build-failed');
const why = staleness(failedMarker);
if (why === undefined) process.exit(0);
process.stderr.write(`building the TypeScript: ${why}\n`);
const r = spawnSync('npm', ['run', 'build:ts'], { cwd: root, stdio: 'inherit' });
if (r.status === 0) {
  rmSync(failedMarker, { force: true });
} else {
  try {
    writeFileSync(failedMarker, `npm run build:ts exited with ${r.status ?? r.signal ?? r.error?.message}\n`);
  } catch {
    // No dist/ to mark: the next start builds anyway.
  }
}
process.exit(r.status ?? 1);
