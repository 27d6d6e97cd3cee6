// ESLint flat config: typescript-eslint type-checked rules and the layer boundaries of docs/architecture.md.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** Imports each layer may not make (dependency direction, docs/architecture.md). */
const boundaries = {
  'src/protocol/**': ['**/broker/**', '**/model/**', '**/transport/**', '**/config/**', '**/cli/**', '**/server.js', 'pino'],
  'src/model/**': ['**/broker/**', '**/transport/**', '**/config/**', '**/cli/**', '**/server.js'],
  'src/broker/**': ['**/transport/**', '**/cli/**', '**/server.js', 'node:net', 'node:tls', 'node:fs', 'node:fs/promises', 'pino', 'ioredis'],
  // Adapters: the cluster may use the store (it joins the store's transaction), never the reverse.
  'src/cluster/**': ['**/broker/**', '**/transport/**', '**/config/**', '**/cli/**', '**/http/**', '**/auth/**', '**/sys/**', '**/client/**', '**/server.js', 'pino'],
  'src/persistence/**': ['**/broker/**', '**/cluster/**', '**/transport/**', '**/config/**', '**/cli/**', '**/http/**', '**/auth/**', '**/sys/**', '**/client/**', '**/server.js', 'pino'],
  'src/transport/**': ['**/broker/**', '**/protocol/**', '**/model/**', '**/config/**', '**/cli/**'],
};

/** Layers a layer may import types from, but no values (the broker core sees adapters only through their ports). */
const typeOnly = {
  'src/broker/**': ['**/cluster/**', '**/persistence/**'],
};

const boundaryMessage = 'Layer boundary: see docs/architecture.md';

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
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            ...patterns.map((group) => ({ group: [group], message: boundaryMessage })),
            ...(typeOnly[files] ?? []).map((group) => ({ group: [group], allowTypeImports: true, message: `${boundaryMessage} (types only)` })),
          ],
        },
      ],
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
