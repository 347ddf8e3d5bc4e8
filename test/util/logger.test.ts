/** The logger writes pino's JSON-lines format (what 0.1 wrote and docs/deploy.md's recipes read). */
import { describe, expect, it } from "vitest";
import { createLogger, levelControl } from "../../src/logger.js";

function capture(level: Parameters<typeof createLogger>[0] = "info") {
  const lines: string[] = [];
  const logger = createLogger(level, { write: (l: string) => lines.push(l) });
  return { logger, lines, parsed: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe("logger", () => {
  it("writes one JSON line per call: level, time, name, the bindings, the fields, then msg", () => {
    const { logger, lines } = capture();
    logger.child({ part: "seq" }).child({ sensor: "t1" }).warn({ attempt: 2, skipped: undefined }, "retrying");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^\{"level":40,"time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z","name":"edge-gateway","part":"seq","sensor":"t1","attempt":2,"msg":"retrying"\}\n$/);
  });

  it("a message alone, an Error alone (under err, its message as msg), and fields that JSON cannot hold do not throw", () => {
    const { logger, parsed } = capture();
    logger.info("plain");
    const cause = new Error("root");
    logger.error(Object.assign(new Error("boom", { cause }), { code: "EIO" }));
    const circular: Record<string, unknown> = { a: 1 };
    circular.self = circular;
    logger.info({ circular, big: 10n, when: new Date(0) }, "odd fields");
    const [plain, err, odd] = parsed();
    expect(plain).toMatchObject({ level: 30, msg: "plain" });
    expect(err).toMatchObject({ level: 50, msg: "boom", err: { type: "Error", message: "boom", code: "EIO", cause: { message: "root" } } });
    expect((err!.err as { stack: string }).stack).toContain("boom");
    expect(odd).toMatchObject({ msg: "odd fields", big: "10", when: "1970-01-01T00:00:00.000Z" });
    expect(odd!.circular).toMatch(/^\[unserializable: /);
  });

  it("drops lines below the level; levelControl sets the level of children made before and after", () => {
    const { logger, parsed } = capture("warn");
    logger.info("dropped");
    const levels = levelControl(logger);
    const before = levels.logger.child({ c: "before" });
    before.info("dropped too");
    levels.setLevel("debug");
    const after = levels.logger.child({ c: "after" }).child({ g: 1 });
    before.debug("before");
    after.debug("after");
    logger.info("the parent keeps its own level");
    levels.setLevel("error");
    before.warn("dropped again");
    expect(parsed().map((l) => l.msg)).toEqual(["before", "after"]);
    expect(levels.level).toBe("error");
    expect(() => (logger.level = "loud" as never)).toThrow(/unknown log level "loud"/);
  });

  it("a sink that throws (stdout closed) does not reach the caller", () => {
    const logger = createLogger("info", { write: () => { throw Object.assign(new Error("EPIPE"), { code: "EPIPE" }); } });
    expect(() => logger.info("lost")).not.toThrow();
  });
});
