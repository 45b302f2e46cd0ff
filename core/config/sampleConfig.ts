/**
 * The commented sample config that `recovery-agent init` writes. A test checks that it
 * validates, so it cannot drift from the schema.
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
  http:
    # Loopback only unless you change it.
    listen: 127.0.0.1:9464
    # Bearer token for mutating endpoints (at least 16 characters).
    # token: \${RECOVERY_AGENT_TOKEN}
  # Worker threads for scans, compression and redo (default: the CPU count).
  # workers: 2
  maxConcurrentRecoveries: 3
  # Recovery time objective per priority: P0 data at risk ... P3 housekeeping.
  rto: { P0: 30s, P1: 2m, P2: 5m, P3: 1h }
  # A plugin that takes longer than this to start is marked failed; the agent goes on.
  pluginStartTimeout: 10s

# The stores to protect.
stores: []
#  - id: demo
#    engine: pagestore
#    path: ./var/demo/store
#    scrub: { rate: 50MiB/s, interval: 24h }

# Third-party plugins: a path (relative to this file) or an npm package name.
plugins: []
#  - module: ./examples/plugins/notify-file.js
#    options: { path: ./var/notifications.log }
`;
