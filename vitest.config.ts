import {defineConfig} from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    disableConsoleIntercept: true,
    // Bounds, not speed targets: tests drive real servers over SSH, and a loaded 2-core machine can be several times slower.
    testTimeout: 180_000,
    hookTimeout: 180_000,
    pool: 'forks',
    globalSetup: ['test/support/leftovers.ts', 'test/support/build.ts'],
    setupFiles: ['test/support/setup-file.ts'],
  },
})
