// ESLint flat config: typescript-eslint type-checked rules and the layer boundaries of docs/architecture.md.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * The layers of src/ (docs/architecture.md) and what each may import: other layers (`layers`), the
 * same only as types (`types`), packages (`packages`, from PACKAGES), and whether Node's I/O modules
 * are allowed (`io`), single modules of a types-only layer whose values are allowed (`values`). Everything else is refused, so a new import across layers is a decision made here.
 */
const LAYERS = {
  protocol: { layers: [], io: false },
  model: { layers: ['protocol'], io: false },
  // The core takes its defaults from the pure configuration schema and nothing else of config/ (docs/decisions/0014).
  broker: { layers: ['protocol', 'model'], types: ['persistence', 'cluster', 'config'], values: ['config/schema.js', 'config/setting.js'], io: false },
  persistence: { layers: ['protocol', 'model'], packages: ['lmdb', 'ioredis'], io: true },
  cluster: { layers: ['protocol', 'model', 'persistence'], packages: ['ioredis'], io: true },
  transport: { layers: [], packages: ['ws'], io: true },
  // Runtime access control keeps its records through the store's port (persistence types), given by server.ts.
  auth: { layers: ['protocol', 'model', 'config', 'outbound'], types: ['broker', 'persistence'], packages: ['jose'], io: true },
  // Calling HTTP services (auth.http, webhooks): fetch, timeouts, counters; nothing of the broker but its Logger type.
  outbound: { layers: [], types: ['broker'], io: true },
  webhooks: { layers: ['protocol', 'model', 'config', 'outbound'], types: ['broker'], io: true },
  // The access routes take the checks of their input, their errors and the session constants from auth.
  http: { layers: ['protocol', 'model', 'transport'], types: ['broker', 'cluster', 'auth'], values: ['broker/query.js', 'auth/access-error.js', 'auth/access-input.js', 'auth/admin-access.js'], packages: ['prom-client'], io: true },
  sys: { layers: ['protocol', 'model'], types: ['broker'], io: false },
  client: { layers: ['protocol'], packages: ['ws'], io: true },
  config: { layers: ['protocol', 'cluster'], packages: ['jsonc-parser'], io: true },
  bridge: { layers: ['protocol', 'model', 'client', 'config'], types: ['broker'], io: true },
  cli: { layers: ['protocol', 'model', 'client', 'config', 'auth', 'persistence'], packages: ['mqtt-packet'], io: true, root: ['server.js', 'web-services.js', 'worker-group.js'] },
};
/** Packages a layer may use only when its entry lists them. */
const PACKAGES = ['pino', 'ioredis', 'lmdb', 'ws', 'jose', 'prom-client', 'mqtt-packet', 'jsonc-parser'];
/** Node modules that do I/O: not in the pure layers (protocol, model, broker core, $SYS). */
const IO = ['node:net', 'node:tls', 'node:fs', 'node:fs/promises', 'node:http', 'node:https', 'node:dgram', 'node:child_process'];
/** Files at the root of src/: the composition root and the public entry, imported by no layer (but cli's `root`). */
const ROOT = ['server.js', 'web-services.js', 'index.js', 'listener-set.js', 'create-logger.js', 'worker-group.js'];

function boundaryRule(name, layer) {
  const others = Object.keys(LAYERS).filter((other) => other !== name);
  const types = layer.types ?? [];
  const refused = others.filter((other) => !layer.layers.includes(other) && !types.includes(other));
  const message = `Layer boundary (${name}): see docs/architecture.md and LAYERS in eslint.config.js`;
  const patterns = [
    ...refused.map((other) => ({ group: [`**/${other}/**`], message })),
    ...types.map((other) => ({
      group: [`**/${other}/**`, ...(layer.values ?? []).filter((file) => file.startsWith(`${other}/`)).map((file) => `!**/${file}`)],
      message: `${message} (types only)`,
      allowTypeImports: true,
    })),
    ...ROOT.filter((file) => !(layer.root ?? []).includes(file)).map((file) => ({ group: [`**/../${file}`], message })),
  ];
  const paths = [
    ...PACKAGES.filter((pkg) => !(layer.packages ?? []).includes(pkg)).map((pkg) => ({ name: pkg, message })),
    ...(layer.io ? [] : IO.map((mod) => ({ name: mod, message: `${message} (no I/O in this layer)` }))),
  ];
  return {
    files: [`src/${name}/**`],
    rules: { '@typescript-eslint/no-restricted-imports': ['error', { patterns, paths }] },
  };
}

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
  ...Object.entries(LAYERS).map(([name, layer]) => boundaryRule(name, layer)),
  {
    // The configuration modules the broker core imports are pure: no I/O, no packages, nothing of ours but protocol types.
    files: ['src/config/schema.ts', 'src/config/setting.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        { patterns: [{ group: ['node:*', '**/cluster/redis/**', '**/config.js', '**/env.js', '**/config-file.js'], message: 'config/schema and config/setting are imported by the broker core: keep them pure' }], paths: PACKAGES },
      ],
    },
  },
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
