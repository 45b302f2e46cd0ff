// Loads recovery-agent's native addon (native/src, built by `npm run build:native`) for the
// current platform and re-exports its functions. Types and docs: index.d.ts.
//
// The file name follows what `napi build --platform` writes:
// recovery-agent-native.<platform>-<arch>[-<abi>].node, e.g. linux-x64-gnu, linux-x64-musl,
// darwin-arm64, win32-x64-msvc.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const BINARY_NAME = 'recovery-agent-native';

/** True on a musl libc Linux (Alpine…), whose addons are built and named separately from glibc's. */
function isMusl() {
  try {
    return readFileSync('/usr/bin/ldd', 'utf8').includes('musl');
  } catch {
    // No ldd script to read: ask Node which libc it runs on (only glibc builds report a version).
    const header = process.report?.getReport?.()?.header;
    return header !== undefined && !header.glibcVersionRuntime;
  }
}

/** The `<platform>-<arch>[-<abi>]` part of the addon's file name for this process, as napi names it. */
function platformTriple() {
  const { platform, arch } = process;
  switch (platform) {
    case 'linux':
      if (arch === 'arm') return isMusl() ? 'linux-arm-musleabihf' : 'linux-arm-gnueabihf';
      return `linux-${arch}-${isMusl() ? 'musl' : 'gnu'}`;
    case 'win32':
      return `win32-${arch}-msvc`;
    case 'android':
      return arch === 'arm' ? 'android-arm-eabi' : `android-${arch}`;
    default:
      // darwin-x64, darwin-arm64, freebsd-x64, …
      return `${platform}-${arch}`;
  }
}

function loadBinding() {
  const file = `./${BINARY_NAME}.${platformTriple()}.node`;
  const path = fileURLToPath(new URL(file, import.meta.url));
  try {
    return require(file);
  } catch (cause) {
    const missing = cause?.code === 'MODULE_NOT_FOUND';
    const err = new Error(
      missing
        ? `recovery-agent native addon not found: expected ${path} (platform ${process.platform}, arch ${process.arch}). ` +
          'Build it with `npm run build:native` (needs a Rust toolchain).'
        : `recovery-agent native addon ${path} failed to load: ${cause?.message ?? cause}. ` +
          'Rebuild it with `npm run build:native`.',
      { cause },
    );
    err.name = 'RecoveryAgentError';
    err.code = 'RA_ERR_NATIVE_MISSING';
    err.details = { path, platform: process.platform, arch: process.arch };
    throw err;
  }
}

const binding = loadBinding();

export const xxh3 = binding.xxh3;
export const xxh3Pages = binding.xxh3Pages;
export const verifyPages = binding.verifyPages;
export const verifyFile = binding.verifyFile;
export const redoCheckRecords = binding.redoCheckRecords;
export const redoApplyPages = binding.redoApplyPages;
export const redoApplyHeld = binding.redoApplyHeld;
export const walScanRecords = binding.walScanRecords;
export const walAnalyze = binding.walAnalyze;
export const walScanAnalyze = binding.walScanAnalyze;
export const lz4DecodeFrame = binding.lz4DecodeFrame;
export const adviseHugePages = binding.adviseHugePages;
