/**
 * The config sections of the built-in plugins (builtins.ts), in the order the schema lists them.
 * Each comes from its plugin's configSection.ts, a small module apart from the plugin's runtime,
 * so `config check` and `config schema` load zod and these, not the plugins. A test checks that
 * this list and the built-in plugins' own `config` agree.
 */
import type { ConfigSection } from '../core/config/section.js';
import { scrubSection } from '../plugins/corruption-detector/configSection.js';
import { healthSection } from '../plugins/health-monitor/configSection.js';
import { healingSection } from '../plugins/self-healer/configSection.js';
import { snapshotsSection } from '../plugins/snapshot-manager/configSection.js';
import { replicationSection } from '../plugins/replication/configSection.js';
import { clusterSection } from '../plugins/cluster/configSection.js';
import { spareSection } from '../plugins/redirect-store/configSection.js';

export const builtinConfigSections: readonly ConfigSection[] = [scrubSection, snapshotsSection, replicationSection, healingSection, healthSection, clusterSection, spareSection];
