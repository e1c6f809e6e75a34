// Type-aware lint: floating promises are bugs in a filesystem.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['out/**', 'dist/**', 'node_modules/**', '**/*.js', '**/*.mjs', 'test/fixtures/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // mocha's describe/it/test and hooks return a Suite, Test or Hook, never a promise: no allow-list needed.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  {
    // The engine: plain Node, neither VS Code nor the LSP library, nor the rest of the server.
    files: ['server/src/overlay/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['vscode', 'vscode-*'], message: 'the engine imports neither VS Code nor the LSP library' },
            { regex: '^\\.\\./(?!\\.\\./\\.\\./shared/src/types$)', message: 'the engine imports only itself, Node and shared/src/types' },
          ],
        },
      ],
    },
  },
  {
    // The holder scan: plain Node, used by the server and the CLI alike.
    files: ['server/src/holders/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['vscode', 'vscode-*'], message: 'the holder scan imports neither VS Code nor the LSP library' },
            {
              regex: '^\\.\\./(?!overlay/|\\.\\./\\.\\./shared/src/types$)',
              message: 'the holder scan imports only itself, the engine, Node and shared/src/types',
            },
          ],
        },
      ],
    },
  },
  {
    // The engine's own folders (formats/, oci/): one level up is still the engine.
    files: ['server/src/overlay/*/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['vscode', 'vscode-*'], message: 'the engine imports neither VS Code nor the LSP library' },
            { regex: '^\\.\\./\\.\\./(?!\\.\\./\\.\\./shared/src/types$)', message: 'the engine imports only itself, Node and shared/src/types' },
          ],
        },
      ],
    },
  },
  {
    // Shared by both sides: the protocol types and what vscode-jsonrpc declares, nothing of Node, VS Code, the client or the server.
    files: ['shared/src/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { regex: '^(node:|vscode$|vscode-languageserver|vscode-languageclient)', message: 'shared code runs on both sides' },
            { regex: '(^|/)(server|client)/', message: 'shared code imports neither side' },
          ],
        },
      ],
    },
  },
  {
    files: ['client/src/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ regex: '(^|/)server/', message: 'the client never imports the server: shared code lives in shared/' }] },
      ],
    },
  },
  {
    files: ['server/src/*.ts', 'server/src/image/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ regex: '(^|/)client/', message: 'the server never imports the client: shared code lives in shared/' }] },
      ],
    },
  },
);
