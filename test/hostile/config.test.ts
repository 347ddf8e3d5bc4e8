/**
 * Hostile config input (issue 18): unsafe line patterns and oversized documents are refused at
 * validation, each with the path and the fix.
 */
import { describe, expect, it } from "vitest";
import { validateDocument } from "../../src/config/load.js";
import { MAX_SENSORS } from "../../src/config/schema.js";
import { linePatternProblem, unsafeRegexProblem } from "../../src/config/safe-regex.js";

const lines = (pattern: string) => ({ id: "meter", type: "energy", driver: "serial-lines", port: "/dev/ttyUSB0", format: "regex", pattern });

describe("config › unsafe regular expressions", () => {
  it.each([
    ["(a+)+$", /nests a quantifier/],
    ["^(?<value>(\\w+\\s?)*)$", /nests a quantifier/],
    ["(?<value>(.*a){12})", /nests a quantifier/],
    ["^(?<value>(a|a)*)$", /start with the same character/],
    ["^(?<value>(\\d|\\w)+)$", /start with the same character/],
    ["^(?<value>(a?)*)x$", /empty string/],
    ["^(?<value>(a)\\1)$", /back-reference/],
  ])("rejects %s with the sensor's pattern path", (pattern, why) => {
    const r = validateDocument({ sensors: [lines(pattern)] });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    const p = r.problems.find((x) => x.path === "sensors[0].pattern");
    expect(p?.message).toMatch(why);
  });

  it.each([
    "^T=(?<value>-?\\d+(\\.\\d+)?)$",
    "^(?<value>\\d+)\\s*C$",
    "^(?<value>[^,]+),(?<h>\\d+)$",
    "^(?<value>(?:foo|bar)+)$",
    "^(?<value>.*)=(.*)$",
    "^(?<value>(?:\\d{1,3}\\.){3}\\d{1,3})$",
  ])("accepts the common safe pattern %s", (pattern) => {
    expect(unsafeRegexProblem(pattern)).toBeUndefined();
    expect(validateDocument({ sensors: [lines(pattern)] }).ok).toBe(true);
  });

  it("still reports a pattern that is not a regular expression at all", () => {
    expect(linePatternProblem("(?<value>")).toMatch(/invalid regular expression/);
  });

  it("rejects a long pattern made of many nested quantifiers", () => {
    expect(unsafeRegexProblem("(a+)+".repeat(100).slice(0, 999))).toMatch(/nests a quantifier/);
  });
});

describe("config › sensors per document", () => {
  const sim = (i: number) => ({ id: `s${i}`, type: "temperature", driver: "simulated" });

  it(`refuses a document with 10,000 sensors with one clear error on sensors (at most ${MAX_SENSORS})`, () => {
    const r = validateDocument({ sensors: Array.from({ length: 10_000 }, (_, i) => sim(i)) });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.problems).toEqual([{ path: "sensors", message: expect.stringMatching(new RegExp(`10000 sensors; at most ${MAX_SENSORS} per device`)) }]);
  });

  it(`accepts exactly ${MAX_SENSORS}`, () => {
    expect(validateDocument({ sensors: Array.from({ length: MAX_SENSORS }, (_, i) => sim(i)) }).ok).toBe(true);
  });
});
