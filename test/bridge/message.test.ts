import { describe, expect, it } from "vitest";
import { headers } from "@nats-io/nats-core";
import { MsgIdHeaders, wireMessage } from "../../src/bridge/publisher/message.js";

/** What nats.js puts on the wire for a MsgHdrs (its `publish` calls `encode()`). */
const wire = (h: unknown) => new TextDecoder().decode((h as { encode(): Uint8Array }).encode());

describe("publisher › message", () => {
  it("the msg-id headers encode byte for byte as nats.js's own headers() with the same Nats-Msg-Id", () => {
    const id = "pi-7.t1:42";
    const real = headers();
    real.set("Nats-Msg-Id", id);
    const ours = new MsgIdHeaders(id);
    expect(wire(ours)).toBe(wire(real));
    expect(wire(ours)).toBe("NATS/1.0\r\nNats-Msg-Id: pi-7.t1:42\r\n\r\n");
    expect(ours.toString()).toBe(real.toString());
    expect(ours.get("Nats-Msg-Id")).toBe(id);
    expect(ours.has("nats-msg-id")).toBe(false);
    expect([...ours]).toEqual([...real]);
    expect(ours.hasError).toBe(false);
  });

  it("a change through the MsgHdrs API is what gets encoded from then on", () => {
    const ours = new MsgIdHeaders("a:1");
    ours.set("X-Trace", "yes");
    const real = headers();
    real.set("Nats-Msg-Id", "a:1");
    real.set("X-Trace", "yes");
    expect(wire(ours)).toBe(wire(real));
    expect(ours.keys()).toEqual(["Nats-Msg-Id", "X-Trace"]);
  });

  it("a wire message carries the reading's msg id in its headers and the A2 body", () => {
    const w = wireMessage("pi-7", { sensor: "t1", type: "temperature", ts: 1_796_256_000_000, value: 21.5, unit: "Cel", quality: "good" }, 42);
    expect(w.msgId).toBe(w.headers.get("Nats-Msg-Id"));
    expect(JSON.parse(new TextDecoder().decode(w.body))).toMatchObject({ device: "pi-7", sensor: "t1", seq: 42, value: 21.5 });
  });
});
