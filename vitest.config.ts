import { configDefaults, defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // The emulated arm64 smoke test runs on its own: `npm run test:arm64`.
    exclude: [...configDefaults.exclude, "test/arm64/**"],
    globalSetup: ["test/global-setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Tests start real nats-server / mosquitto / socat processes; two cores here, so keep
    // file-level parallelism modest to avoid timing noise.
    maxWorkers: 2,
    minWorkers: 1,
    reporters: ["default"],
  },
});
