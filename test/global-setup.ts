/**
 * Builds dist/ and its CLI bundle once before the suite: the deploy tests run the built `bin/edge-gateway.js`
 * (as systemd and the container do), and must not test a stale build.
 */
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

export default function setup(): void {
  const root = fileURLToPath(new URL("..", import.meta.url));
  execFileSync(process.execPath, [fileURLToPath(new URL("../node_modules/typescript/bin/tsc", import.meta.url)), "-p", "tsconfig.build.json"], {
    cwd: root,
    stdio: "inherit",
  });
  // The bin runs the bundle of dist/ (scripts/bundle.mjs), as `npm run build` makes it.
  execFileSync(process.execPath, [fileURLToPath(new URL("../scripts/bundle.mjs", import.meta.url))], { cwd: root, stdio: "inherit" });
}
