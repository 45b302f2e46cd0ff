// @ts-check
import { readFileSync } from 'node:fs';
import path from 'node:path';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const root = import.meta.dirname;

/**
 * The package's own entry points that lead into a plugin (`recovery-agent/pagestore` → `pagestore`):
 * importing one of those from another plugin is the same reach as a relative import.
 */
const selfReferences = (() => {
  const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
  /** @type {Map<string, string>} */
  const out = new Map();
  for (const [sub, target] of Object.entries(pkg.exports ?? {})) {
    const file = typeof target === 'string' ? target : target?.default;
    const m = typeof file === 'string' ? /^\.\/dist\/plugins\/([^/]+)\//.exec(file) : null;
    if (m) out.set(path.posix.join(pkg.name, sub), m[1]);
  }
  return out;
})();

/**
 * A file under plugins/X/ imports no file under plugins/Y/ (Y ≠ X), its index included: plugins
 * use each other only through contracts (core/contracts/: an interface, a token the other plugin
 * provides, a guard). Relative imports are resolved against the importing file, so `../Y/a.js`,
 * `../../plugins/Y/index.js` and `import('../Y/b.js')` are all caught, as is `recovery-agent/Y`.
 */
const noCrossPluginImports = {
  meta: {
    type: 'problem',
    docs: { description: 'forbid a plugin from importing another plugin\'s files' },
    schema: [],
    messages: {
      cross: 'plugins/{{own}} must not import plugins/{{other}} ("{{source}}"): plugins use each other only through contracts in core/contracts/ (resolve what plugins/{{other}} provides by its token)',
    },
  },
  /** @param {import('eslint').Rule.RuleContext} context */
  create(context) {
    const file = context.filename;
    const rel = path.relative(root, file).split(path.sep);
    if (rel[0] !== 'plugins' || rel.length < 3) return {};
    const own = rel[1];
    /** The plugin directory a module specifier leads into, if any. */
    const pluginOf = (/** @type {string} */ source) => {
      if (source.startsWith('.')) {
        const to = path.relative(root, path.resolve(path.dirname(file), source)).split(path.sep);
        return to[0] === 'plugins' && to.length >= 2 ? to[1] : undefined;
      }
      for (const [spec, plugin] of selfReferences) if (source === spec || source.startsWith(`${spec}/`)) return plugin;
      return undefined;
    };
    /** @param {any} node @param {any} literal */
    const check = (node, literal) => {
      const source = literal?.type === 'Literal' && typeof literal.value === 'string' ? literal.value : undefined;
      if (source === undefined) return;
      const other = pluginOf(source);
      if (other !== undefined && other !== own) context.report({ node, messageId: 'cross', data: { own, other, source } });
    };
    return {
      ImportDeclaration: (node) => check(node, node.source),
      ExportNamedDeclaration: (node) => check(node, node.source),
      ExportAllDeclaration: (node) => check(node, node.source),
      ImportExpression: (node) => check(node, node.source),
      /** @param {any} node `import('…').T` in a type */
      TSImportType: (node) => check(node, node.source ?? node.argument?.literal),
      /** @param {any} node `import x = require('…')` */
      TSExternalModuleReference: (node) => check(node, node.expression),
      CallExpression: (node) => {
        if (node.callee.type === 'Identifier' && node.callee.name === 'require') check(node, node.arguments[0]);
      },
    };
  },
};

export default tseslint.config(
  // Only the project's folders: a scratch file beside them (or anything else at the top) is not linted.
  { ignores: ['*', '!core/', '!plugins/', '!cli/', '!test/', '!bench/', '!examples/', '!scripts/', '!bin/', '!native/', '!deploy/', '!eslint.config.js'] },
  { ignores: ['dist/**', 'node_modules/**', 'native/target/**', 'bench/results/**', 'var/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: { console: 'readonly', process: 'readonly', Buffer: 'readonly', URL: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', setImmediate: 'readonly', queueMicrotask: 'readonly', SharedArrayBuffer: 'readonly', Atomics: 'readonly', BigInt: 'readonly', BigUint64Array: 'readonly', __dirname: 'readonly', require: 'readonly', module: 'writable' },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-require-imports': 'off',
    },
  },
  {
    // The core knows contracts, not implementations: it never imports a plugin or the app layer,
    // by a relative path, through the package's own plugin entry (recovery-agent/pagestore), or
    // with a dynamic import().
    files: ['core/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['**/plugins/**', '**/cli/**', 'recovery-agent/pagestore', 'recovery-agent/pagestore/**'], message: 'core/ must not import plugins/ or the app layer (cli/): depend on a contract in core/contracts/ and let the app layer wire the implementation' }] }],
      'no-restricted-syntax': ['error', { selector: "ImportExpression[source.value=/(^|\\/)(plugins|cli)\\/|^recovery-agent\\/pagestore/]", message: 'core/ must not import plugins/ or the app layer (cli/), not even with import()' }],
    },
  },
  {
    // Plugins are libraries of the app layer, never the other way round; and they use each
    // other only through contracts (tests, bench/ and cli/, the app layer, wire them together).
    files: ['plugins/**/*.ts'],
    plugins: { local: { rules: { 'no-cross-plugin-imports': noCrossPluginImports } } },
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['**/cli/**'], message: 'plugins must not import the app layer (cli/)' }] }],
      'local/no-cross-plugin-imports': 'error',
    },
  },
);
