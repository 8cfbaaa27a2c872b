import js from '@eslint/js'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  { ignores: ['dist/', 'build/', 'node_modules/', 'scratch/'] },
  js.configs.recommended,
  ...tseslint.configs.strict,
  {
    files: ['**/*.ts'],
    rules: {
      // Aedes hooks are callback-style; an unused `_client` argument documents the slot.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }]
    }
  },
  {
    // the examples are plain Node.js scripts
    files: ['examples/**/*.mjs'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } }
  },
  {
    // the operator console's script runs in the browser, as a classic script beside uPlot's
    files: ['console/**/*.js'],
    languageOptions: {
      sourceType: 'script',
      globals: {
        window: 'readonly', document: 'readonly', location: 'readonly', sessionStorage: 'readonly', fetch: 'readonly', Node: 'readonly',
        setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', confirm: 'readonly', alert: 'readonly', uPlot: 'readonly'
      }
    }
  },
  {
    // small modules with one job each
    files: ['src/**/*.ts'],
    rules: { 'max-lines': ['error', { max: 300 }] }
  },
  {
    // the plugin and the cluster strategies are usable without the broker around them
    files: ['src/plugin/**/*.ts', 'src/cluster/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [{ group: ['**/broker/*', '**/cli/*'], message: 'src/plugin and src/cluster must not depend on the broker or the CLI' }]
      }]
    }
  },
  {
    // benchmarks stand on their own: what tests and benchmarks share lives in harness/
    files: ['bench/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [{ group: ['**/test/**'], message: 'bench/ must not import test code; share it through harness/' }]
      }]
    }
  }
)
