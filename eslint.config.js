// @ts-check
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

// Formatting belongs to Prettier (`npm run lint` runs `prettier --check` after ESLint). The
// typescript-eslint configs below enable no formatting rules, so eslint-config-prettier is not
// needed.
export default defineConfig(
  { ignores: ['dist/', 'coverage/', 'node_modules/', '.tmp/'] },
  {
    files: ['**/*.ts'],
    extends: [tseslint.configs.strictTypeChecked, tseslint.configs.stylisticTypeChecked],
    languageOptions: {
      parserOptions: {
        projectService: true,
        tsconfigRootDir: import.meta.dirname,
      },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // Counts, statuses and attempts read naturally in messages: `attempt ${n}`.
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true }],
      // `_`-prefixed names mark a parameter an interface requires but an implementation ignores;
      // rest siblings drop a field from a copy (`const { secret, ...rest } = x`).
      '@typescript-eslint/no-unused-vars': [
        'error',
        {
          argsIgnorePattern: '^_',
          varsIgnorePattern: '^_',
          caughtErrorsIgnorePattern: '^_',
          destructuredArrayIgnorePattern: '^_',
          ignoreRestSiblings: true,
        },
      ],
      // `() => resolve()` and `(e) => void log(e)` callbacks are clear as they are.
      '@typescript-eslint/no-confusing-void-expression': ['error', { ignoreArrowShorthand: true }],
    },
  },
  {
    files: ['test/**/*.ts', 'test-medplum/**/*.ts', 'bench/**/*.ts'],
    rules: {
      // With `noUncheckedIndexedAccess`, a test that has just asserted a row exists reads `rows[0]!`.
      '@typescript-eslint/no-non-null-assertion': 'off',
      // `expect(store.saveLink).toHaveBeenCalled()` passes a method of a mock, never calls it unbound.
      '@typescript-eslint/unbound-method': 'off',
    },
  },
  {
    // This file is plain JavaScript outside the TypeScript project.
    files: ['**/*.js'],
    extends: [tseslint.configs.disableTypeChecked],
  },
);
