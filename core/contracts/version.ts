/**
 * The version of the plugin contracts in `core/contracts/`. A plugin names the range it was
 * written against (`contractVersion: '^1.0.0'`); the host refuses a plugin whose range this
 * version does not satisfy. Bump the major when a contract changes incompatibly.
 */
export const CONTRACT_VERSION = '1.5.0';

// 1.1.0: HealingAction.canHandle may return a promise (third-party plugins run isolated and are
// asked across threads). Plugins written against ^1.0.0 still load; callers await canHandle.
// 1.2.0: HealingAction.verify may answer 'unobservable' (the action cannot observe its effect:
// a notification, a command without a check); the recovery is then applied-unverified.
// 1.3.0: PageEngine, the page face of a storage engine (pages, log, files, live owner), and
// LogArchiverSource; consumers pick engines by this contract instead of importing an engine.
// 1.4.0: ClusterMemberSource, what the cluster layer (etcd election) asks of replication.
// 1.5.0: PageEngine.log.segmentFileSize (optional): a WAL copy's length, its tail left a hole.
