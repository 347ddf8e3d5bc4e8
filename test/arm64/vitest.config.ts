/**
 * The arm64 smoke test (`npm run test:arm64`, scripts/test-arm64.sh): emulated with qemu-user,
 * so slow; kept out of the main suite (see ../../vitest.config.ts) and run on its own.
 */
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/arm64/**/*.test.ts"],
    globalSetup: ["test/global-setup.ts"],
    // qemu on a shared 2-core machine: one emulated `check` took 11 s idle and 160 s at load 30.
    testTimeout: 900_000,
    hookTimeout: 300_000,
    maxWorkers: 1,
    minWorkers: 1,
    reporters: ["default"],
  },
});
