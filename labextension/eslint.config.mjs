// The JupyterLab extension template's ESLint config (eslint.config.mjs of
// jupyterlab/extension-template), adapted: the tests are linted too (with their own
// tsconfig), the generated REST types are not, the interface naming rule is the
// template's with this code base's names (no `I` prefix) allowed, and two rules of the
// Jupyter plugin that do not fit this panel are off (each says why).
import js from '@eslint/js';
import jupyterPlugin from '@jupyter/eslint-plugin';
import prettierRecommended from 'eslint-plugin-prettier/recommended';
import { defineConfig } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default defineConfig([
  {
    ignores: [
      'node_modules/**',
      'lib/**',
      'coverage/**',
      'test/fixtures/**',
      '**/*.js',
      '**/*.d.ts',
      // generated from agcluster_jupyter/openapi.yaml (npm run gen:rest)
      'src/schema.ts'
    ]
  },
  js.configs.recommended,
  tseslint.configs.recommended,
  jupyterPlugin.configs.recommended,
  {
    files: ['**/*.ts', '**/*.tsx'],
    plugins: {
      jupyter: jupyterPlugin
    },
    languageOptions: {
      globals: {
        ...globals.browser,
        ...globals.es2015,
        ...globals.node
      },
      parserOptions: {
        project: 'tsconfig.test.json',
        sourceType: 'module'
      }
    },
    rules: {
      '@typescript-eslint/naming-convention': [
        'error',
        {
          // the template asks for `I` + PascalCase; JupyterLab's own tokens
          // (IRenderMimeRegistry) have it, this code base's interfaces do not
          selector: 'interface',
          format: ['PascalCase']
        }
      ],
      '@typescript-eslint/no-unused-vars': ['warn', { args: 'none' }],
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-namespace': 'off',
      '@typescript-eslint/no-use-before-define': 'off',
      curly: ['error', 'all'],
      eqeqeq: 'error',
      'prefer-arrow-callback': 'error',
      // the panel has no translations (no ITranslator): its strings are English
      'jupyter/no-untranslated-string': 'off',
      // the panel is built in activate() (the side bar shows it at start): loading
      // its modules lazily would only move that work, not save it
      'jupyter/prefer-lazy-imports': 'off'
    }
  },
  {
    // the build scripts run in Node.js
    files: ['**/*.mjs'],
    languageOptions: { globals: { ...globals.node } }
  },
  prettierRecommended
]);
