import { readFileSync } from "node:fs";

let cached: string | undefined;

/**
 * The package version (from package.json, read once); `0.0.0` when it cannot be read. This
 * module runs from dist/version.js (tsc) or from a chunk in dist/bundle/ (the CLI's bundle):
 * package.json is one or two levels up.
 */
export function packageVersion(): string {
  if (cached) return cached;
  cached = "0.0.0";
  for (const rel of ["../package.json", "../../package.json"]) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), "utf8")) as { name?: string; version?: string };
      if (pkg.name !== "edge-gateway") continue;
      cached = pkg.version ?? "0.0.0";
      break;
    } catch {
      // not there: the other level
    }
  }
  return cached;
}
