// ESLint flat config: typescript-eslint type-checked rules and the layer boundaries of docs/architecture.md.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** Imports each layer may not make (dependency direction, docs/architecture.md). */
const boundaries = {
  'src/protocol/**': ['**/broker/**', '**/model/**', '**/transport/**', '**/config/**', '**/cli/**', '**/server.js', 'pino'],
  'src/model/**': ['**/broker/**', '**/transport/**', '**/config/**', '**/cli/**', '**/server.js'],
  // The core takes its defaults from the pure configuration schema and nothing else of config/ (docs/decisions/0014).
  'src/broker/**': ['**/transport/**', '**/cli/**', '**/server.js', 'node:net', 'node:tls', 'node:fs', 'node:fs/promises', 'pino', 'ioredis', '**/cluster/redis.js', '**/config/**', '!**/config/schema.js', '!**/config/setting.js'],
  'src/cluster/**': ['**/broker/**', '**/transport/**', '**/config/**', '**/cli/**', '**/server.js', 'pino'],
  'src/transport/**': ['**/broker/**', '**/protocol/**', '**/model/**', '**/config/**', '**/cli/**'],
  'src/config/**': ['**/broker/**', '**/transport/**', '**/http/**', '**/cli/**', '**/server.js', '**/cluster/redis.js', 'pino'],
  // Pure modules the broker core imports: no I/O, no dependencies.
  'src/config/{schema,setting}.ts': ['node:*', '**/broker/**', '**/transport/**', '**/http/**', '**/cli/**', '**/server.js', '**/cluster/redis.js', 'pino', 'jsonc-parser', 'ioredis', 'lmdb', 'ws', 'jose', 'prom-client'],
  'src/bridge/**': ['**/cli/**', '**/server.js', '**/http/**'],
};

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'data/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', ignoreRestSiblings: true }],
      'no-restricted-syntax': ['error', { selector: 'TSEnumDeclaration', message: 'Use `as const` objects and unions, not enum.' }],
    },
  },
  ...Object.entries(boundaries).map(([files, patterns]) => ({
    files: [files],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: patterns, message: 'Layer boundary: see docs/architecture.md' }] }],
    },
  })),
  {
    files: ['test/**', 'bench/**'],
    rules: {
      // node:test awaits what describe/test return; nothing floats.
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['describe', 'test', 'it', 'suite'] }] },
      ],
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
  },
);
