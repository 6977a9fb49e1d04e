// @ts-check
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', '.tools/', '.data/', 'dist/', 'test-output/', 'bench/results/'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  {
    // The workflow sandbox: no Node built-ins anywhere in the folder, and no I/O libraries.
    files: ['workflows/**/*.ts', 'bench/workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['node:*'], message: 'Workflows are deterministic: no Node built-ins.' },
            {
              group: ['fs', 'path', 'crypto', 'http', 'https', 'net', 'os', 'child_process', 'events', 'stream', 'url', 'util'],
              message: 'Workflows are deterministic: no Node built-ins.',
            },
            { group: ['**/activities/*', '**/client/*', '**/worker/*', '**/service/*', '**/config/*'], message: 'Workflows import only contract types.' },
          ],
        },
      ],
    },
  },
);
