import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.{ts,tsx}'],
    environment: 'node',
    setupFiles: ['test/setup-dom.ts'],
    testTimeout: 10_000,
    server: {
      deps: {
        // ESM without file extensions: let Vite resolve them (the panel test's DOM)
        inline: [
          /@jupyter\/web-components/,
          /@jupyter\/react-components/,
          /@microsoft\/fast-/
        ]
      }
    }
  }
});
