import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { renderConfigReference } from "../../src/config/reference.js";
import { DRIVER_NAMES } from "../../src/drivers/registry.js";

describe("config › reference", () => {
  it("docs/configuration.md is generated from the current schema (run `npm run docs:config`)", () => {
    const committed = readFileSync(new URL("../../docs/configuration.md", import.meta.url), "utf8");
    expect(committed).toBe(renderConfigReference());
  });

  it("the committed docs/configuration.md lists every registered driver", () => {
    const committed = readFileSync(new URL("../../docs/configuration.md", import.meta.url), "utf8");
    expect(DRIVER_NAMES.length).toBeGreaterThanOrEqual(8);
    for (const d of DRIVER_NAMES) expect(committed).toContain(`### \`driver: ${d}\``);
  });

  it("documents every driver and the contract's defaults", () => {
    const doc = renderConfigReference();
    for (const d of ["simulated", "serial-lines", "pms5003", "nmea", "modbus-rtu", "gpio-input", "gpio-counter", "ds18b20"]) {
      expect(doc).toContain(`### \`driver: ${d}\``);
    }
    expect(doc).toMatch(/\| `buffer\.maxBytes` \| size \| `"512MiB"` \|/);
    expect(doc).toMatch(/\| `buffer\.maxAge` \| duration \| `"7d"` \|/);
    expect(doc).toMatch(/\| `http\.listen` \| string \| `"127\.0\.0\.1:9464"` \|/);
  });
});
