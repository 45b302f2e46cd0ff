/**
 * The built-in plugins, registered by `recovery-agent run` before the config's own plugins.
 * Each component lands here as a plugin of its own as it is built.
 */
import type { PluginDefinition } from '../core/plugin.js';

export const builtinPlugins: readonly PluginDefinition[] = [];
