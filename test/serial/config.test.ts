import { describe, expect, it } from "vitest";
import { validateDocument } from "../../src/config/load.js";

const meter = (id: string, unitId: number, extra: Record<string, unknown> = {}) => ({
  id, type: "energy", driver: "modbus-rtu", port: "/dev/ttyUSB0", unitId, registers: [{ name: "e", address: 0 }], ...extra,
});

describe("serial config › sensors sharing a port", () => {
  it("accepts several units on one bus with the same line settings", () => {
    expect(validateDocument({ sensors: [meter("m1", 1, { baudRate: 19200 }), meter("m2", 2, { baudRate: 19200 })] }).ok).toBe(true);
  });

  it("rejects differing line settings on one port, naming the sensor, the field and the other sensor", () => {
    const r = validateDocument({
      sensors: [meter("m1", 1, { parity: "even" }), meter("m2", 2, { baudRate: 19200 }), { id: "gps", type: "position", driver: "nmea", port: "/dev/ttyUSB0", baudRate: 4800 }],
    });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    const paths = r.problems.map((p) => p.path);
    expect(paths).toEqual(["sensors[1].baudRate", "sensors[1].parity", "sensors[2].baudRate", "sensors[2].parity"]);
    expect(r.problems[0]!.message).toMatch(/port \/dev\/ttyUSB0 is shared with sensor "m1" \(sensors\[0\]\), which uses baudRate 9600, not 19200/);
  });

  it("ignores disabled sensors", () => {
    expect(validateDocument({ sensors: [meter("m1", 1), meter("m2", 2, { baudRate: 19200, enabled: false })] }).ok).toBe(true);
  });
});
