// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
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
    // Plugins are libraries of the app layer, never the other way round.
    files: ['plugins/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['**/cli/**'], message: 'plugins must not import the app layer (cli/)' }] }],
    },
  },
);
