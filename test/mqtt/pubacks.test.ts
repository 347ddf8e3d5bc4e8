import { describe, expect, it } from "vitest";
import { DeferredPubacks } from "../../src/bridge/mqtt/pubacks.js";

describe("mqtt › deferred PUBACKs (issue 18)", () => {
  it("sends each PUBACK only once its message settled, in the order the messages came", () => {
    const p = new DeferredPubacks(10);
    const sent: number[] = [];
    const settle = [1, 2, 3].map((id) => {
      const s = p.expect(id);
      expect(p.take(id, () => sent.push(id))).toBe(true);
      return s;
    });
    settle[1]!(true);
    settle[2]!(true);
    expect(sent).toEqual([]); // 1 is not stored yet: 2 and 3 wait behind it
    settle[0]!(true);
    expect(sent).toEqual([1, 2, 3]);
    expect(p.take(99, () => sent.push(99))).toBe(false); // not ours: sent by MQTT.js at once
  });

  it("a message refused (the gateway stopped first) gets no PUBACK and does not block the ones after it", () => {
    const p = new DeferredPubacks(10);
    const sent: number[] = [];
    const a = p.expect(1);
    p.take(1, () => sent.push(1));
    const b = p.expect(2);
    p.take(2, () => sent.push(2));
    a(false);
    b(true);
    expect(sent).toEqual([2]);
  });

  it("holds MQTT.js (its done) while more than `limit` PUBACKs wait, and lets it go as they are sent", () => {
    const p = new DeferredPubacks(2);
    let released = 0;
    const settles = [1, 2, 3, 4].map((id) => {
      const s = p.expect(id);
      p.take(id, () => undefined);
      p.proceed(() => released++);
      return s;
    });
    expect(released).toBe(2);
    settles[0]!(true);
    settles[1]!(true);
    expect(released).toBe(4);
  });

  it("after the connection closed, its held PUBACKs are never sent (the broker delivers the messages again)", () => {
    const p = new DeferredPubacks(10);
    const sent: number[] = [];
    const s = p.expect(7);
    p.take(7, () => sent.push(7));
    p.reset();
    s(true);
    expect(sent).toEqual([]);
    expect(p.waiting).toBe(0);
  });
});
