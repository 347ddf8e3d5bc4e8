/** TurnCork: the PUBACKs written in one event-loop turn reach the socket in one writev. */
import { describe, expect, it } from "vitest";
import { Writable } from "node:stream";
import { TurnCork } from "../../src/bridge/mqtt/cork.js";

function recorder() {
  const calls: number[] = []; // chunks per underlying write
  const stream = new Writable({
    write(_chunk, _enc, cb) {
      calls.push(1);
      cb();
    },
    writev(chunks, cb) {
      calls.push(chunks.length);
      cb();
    },
  });
  return { stream, calls };
}

/** What MQTT.js's writeToStream does per packet: cork, write, uncork on the next tick. */
function mqttJsWrite(stream: Writable, data: string): Promise<void> {
  stream.cork();
  stream.write(data);
  return new Promise((resolve) =>
    process.nextTick(() => {
      stream.uncork();
      resolve();
    }),
  );
}

describe("mqtt › TurnCork", () => {
  it("without it, each packet is its own write; with it, the packets of one turn go out in one writev, after the turn", async () => {
    const bare = recorder();
    for (let i = 0; i < 5; i++) await mqttJsWrite(bare.stream, `puback ${i}`);
    expect(bare.calls).toEqual([1, 1, 1, 1, 1]);

    const held = recorder();
    const cork = new TurnCork();
    for (let i = 0; i < 5; i++) {
      cork.hold(held.stream);
      await mqttJsWrite(held.stream, `puback ${i}`);
    }
    expect(held.calls).toEqual([]); // still this turn (ticks and microtasks only)
    await new Promise(setImmediate);
    expect(held.calls).toEqual([5]);

    // The next turn holds again.
    cork.hold(held.stream);
    await mqttJsWrite(held.stream, "puback 5");
    await new Promise(setImmediate);
    expect(held.calls).toEqual([5, 1]);
    expect(held.stream.writableCorked).toBe(0);
  });

  it("does nothing for a missing or destroyed stream", () => {
    const cork = new TurnCork();
    expect(() => cork.hold(undefined)).not.toThrow();
    const { stream } = recorder();
    stream.destroy();
    cork.hold(stream);
    expect(stream.writableCorked).toBe(0);
  });
});
