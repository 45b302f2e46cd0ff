/**
 * The commented sample config that `recovery-agent init` writes: the core's sections and the
 * built-in plugins' (which is why it lives in the app layer). A test checks that it validates
 * against the composed schema, so it cannot drift from it.
 */
export const SAMPLE_CONFIG = `# recovery-agent configuration.
# Check it with:  recovery-agent config check FILE
# Editor support: recovery-agent config schema > recovery-agent.schema.json
# Relative paths are relative to this file. \${NAME} is replaced by the environment variable
# NAME (\${NAME:-default} gives a default). Durations: 100ms, 5s, 2m, 1h. Sizes: 8KiB, 50MiB.

agent:
  # The agent's own state: journal of failures and recoveries, scrub progress, learning.
  dataDir: ./var/agent
  # fatal | error | warn | info | debug | trace | silent
  logLevel: info
  # auto: readable lines on a terminal, JSON lines otherwise (a file, journald) | json | pretty.
  # RECOVERY_AGENT_LOG_FORMAT=json|pretty|auto overrides it for one run.
  logFormat: auto
  http:
    # Loopback only unless you change it; another address needs a token (or the line below).
    listen: 127.0.0.1:9464
    # Bearer token (at least 16 characters): needed by mutating endpoints and, once set, by
    # every endpoint but /health and /metrics. \`recovery-agent status\` reads it from
    # RECOVERY_AGENT_TOKEN or from this file (--config).
    # token: \${RECOVERY_AGENT_TOKEN}
    # Serve a non-loopback address without a token: anyone who reaches it reads status,
    # failures and snapshots. Refused unless set.
    # allowUnauthenticatedRemote: false
  # Worker threads for scans, compression and redo (default: the CPU count).
  # workers: 2
  maxConcurrentRecoveries: 3
  # Recovery time objective per priority: P0 data at risk ... P3 housekeeping.
  rto: { P0: 30s, P1: 2m, P2: 5m, P3: 1h }
  # A plugin that takes longer than this to start is marked failed; the agent goes on.
  pluginStartTimeout: 10s
  # Each third-party plugin runs in a child process of its own with these limits; one that goes
  # over them (or throws, exits or hangs) is marked failed and the agent goes on without it.
  pluginResourceLimits: { maxOldGenerationSizeMb: 256, maxExternalMemoryMb: 256 }
  # A call into a third-party plugin (canHandle, apply, verify, sample...) that takes longer fails.
  pluginCallTimeout: 30s

# The stores to protect.
stores: []
#  - id: demo
#    engine: pagestore
#    path: ./var/demo/store
#    # Background scrub: checks every page at this many bytes/s (about 2 % of a core at
#    # 50 MiB/s), a full pass every interval; resumes where it stopped after a restart.
#    # walInterval: how often the live WAL's records are checked (wal-corruption).
#    scrub: { rate: 50MiB/s, interval: 24h, walInterval: 1m }
#    # Snapshots (LZ4, full + incremental) and the WAL archive, for point-in-time restore and
#    # for repair-page, which rebuilds a corrupt page from the newest snapshot + the WAL.
#    # Each scheduled snapshot asks the store's owner for a checkpoint first.
#    snapshots:
#      dir: ./var/demo/snapshots
#      every: 1h                    # omit to take snapshots only from the CLI
#      fullEvery: 12                # every 12th is full, the others incremental
#      keep: { full: 2, incremental: 12 }
#      maxAge: 7d
#      verifyEvery: 1h              # check every snapshot file and archived segment (0: off)
#      verifyRate: 64MiB/s          # how fast such a check reads
#    # Where the store is restored (snapshots + WAL archive + what still reads of its own log)
#    # when its disk fails with EIO; its application is restarted there and finds it in
#    # RECOVERY_AGENT_STORE_PATH. An empty path on another disk: its contents are replaced.
#    spare: /mnt/other-disk/demo/store

# Processes the agent starts and supervises (command), or watches (pidFile). An exit is a
# process-crash failure, silence past heartbeat.timeout a process-hang (both P1).
processes: []
#  - id: demo-writer
#    command: node                  # on PATH, or a path relative to cwd
#    args: [dist/examples/demo-writer.js, --store, ./var/demo/store]
#    cwd: .                         # default: this file's directory
#    env: { NODE_ENV: production }  # added to the agent's environment
#    store: demo                    # the store it writes (an id in stores)
#    # The agent passes RECOVERY_AGENT_HEARTBEAT=udp://host:port/token; the process sends the
#    # token as a datagram every 500 ms or so. Or probes: http: URL (2xx), tcp: host:port.
#    heartbeat: { udp: 127.0.0.1:9465, timeout: 5s }
#    # A probe of real work (with store:): no commit for timeout while transactions are open or
#    # waiting is a process-hang too, even while heartbeats come. Idle (nothing open) is not hung.
#    workWatch: { enabled: true, interval: 1s, timeout: 30s }
#    restart:
#      policy: on-failure           # on-failure | always | never
#      backoff: { initial: 100ms, max: 15s, resetAfter: 30s }
#      limit: { burst: 5, within: 60s }   # more starts than this: given up, escalated
#    stopGrace: 5s                  # SIGTERM on stop, SIGKILL after this
#  - id: legacy-app
#    pidFile: /run/legacy-app.pid   # attach: pid on line 1, start time (/proc/<pid>/stat field 22) on line 2 if known
#    heartbeat: { http: http://127.0.0.1:8080/healthz, interval: 1s, timeout: 5s }

# Health monitor: CPU, memory, disk space and inodes, disk I/O, network, stores and processes,
# sampled every interval into a 0-100 score (80+ healthy, 50-79 degraded, below 50 critical),
# kept as history (GET /health/history), and trends that predict exhaustion. See
# plugins/health-monitor/README.md for every threshold and weight.
health:
  interval: 1s
  retention: 1h
  # paths: [/srv/logs]            # more filesystems to watch besides dataDir and the stores'
  sustain: 5                      # samples a new level must hold before it counts
  weights: { cpu: 1, memory: 2, disk: 3, io: 1, network: 1, store: 2, process: 1 }
  # thresholds: { disk: { good: 0.25, bad: 0 }, walBytes: { good: 256MiB, bad: 4GiB } }
  prediction:
    window: 5m                    # least-squares fit over this much history
    recent: 30s                   # ... confirmed by a fit over the recent part
    horizon: 5m                   # publish predicted-exhaustion (P2) when it runs out within this
    guard: 0.2                    # ... and at most this share is left
    sustain: 60                   # ... for this many samples in a row

# Third-party plugins: a path (relative to this file) or an npm package name. Each runs
# isolated in a child process (see agent.pluginResourceLimits).
plugins: []
#  - module: ./examples/plugins/notify-file.js
#    options: { path: ./var/notifications.log }
`;
