// ESLint flat config: typescript-eslint's recommended rules (syntactic only: no type information, so
// no TypeScript program is built; tsc checks types) plus a few rules that catch real bugs. `npm run lint` runs it.
const { defineConfig } = require('eslint/config');
const js = require('@eslint/js');
const tseslint = require('typescript-eslint');
const reactHooks = require('eslint-plugin-react-hooks');

module.exports = defineConfig(
  {
    // Build output, dependencies, runtime data. Plain JavaScript files (jest.config.js, scripts/*.js,
    // test/setup/*.mjs, scripts/test-servers/*.cjs) are small glue and are not linted.
    ignores: [
      '**/node_modules/**',
      'dist/**',
      'designer/dist/**',
      'coverage/**',
      '.data/**',
      'test-artifacts/**',
      '.cache/**',
      '**/*.js',
      '**/*.mjs',
      '**/*.cjs',
    ],
  },
  {
    files: ['**/*.ts', '**/*.tsx'],
    extends: [js.configs.recommended, tseslint.configs.recommended],
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
    },
  },
  {
    files: ['designer/src/**/*.tsx', 'designer/src/**/*.ts'],
    plugins: { 'react-hooks': reactHooks },
    rules: {
      'react-hooks/rules-of-hooks': 'error',
      'react-hooks/exhaustive-deps': 'warn',
      // The designer edits whatever JSON the API and the node types' JSON Schemas hold (`Json` is
      // deliberately `any`); the server side keeps the rule.
      '@typescript-eslint/no-explicit-any': 'off',
    },
  },
);
