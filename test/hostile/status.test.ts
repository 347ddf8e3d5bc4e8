/**
 * `status` always fits in one NATS message (issue 18): the sensor list is cut to a byte budget,
 * and the most sensors a document may hold fit it whole.
 */
import { describe, expect, it } from "vitest";
import { MAX_SENSORS } from "../../src/config/schema.js";
import { boundSensors, STATUS_MAX_SENSOR_BYTES, type SensorStatus } from "../../src/daemon/status.js";

const entry = (i: number, pad = 0): SensorStatus => ({
  id: `sensor-with-a-longish-id-${i}`,
  driver: "modbus-rtu",
  type: "energy",
  health: "error",
  error: "E".repeat(200 + pad),
  code: "EGW_SERIAL_OPEN",
  published: 123_456_789,
  suppressed: 1_234_567,
  counters: { read: 987_654_321, rejected: { checksum: 12345, parse: 6789, timeout: 42, "too-long": 7 }, reopens: 99, errors: 1234 },
  lastReading: { sensor: `sensor-with-a-longish-id-${i}`, type: "energy", ts: 1_764_460_800_123, values: { l1: 230.1, l2: 229.8, l3: 231.4, i1: 12.5, i2: 11.9, i3: 13.1, p: 8421.7, e: 123456.789 }, unit: "V", quality: "good" },
});

describe("status › bounded", () => {
  it(`keeps every sensor when a full document (${MAX_SENSORS} sensors with long errors) fits`, () => {
    const all = Array.from({ length: MAX_SENSORS }, (_, i) => entry(i));
    const kept = boundSensors(all);
    expect(kept).toHaveLength(MAX_SENSORS);
    expect(Buffer.byteLength(JSON.stringify(kept))).toBeLessThanOrEqual(STATUS_MAX_SENSOR_BYTES);
  });

  it("cuts the list to the budget when entries are huge, never over it", () => {
    const all = Array.from({ length: MAX_SENSORS }, (_, i) => entry(i, 10_000));
    const kept = boundSensors(all);
    expect(kept.length).toBeGreaterThan(0);
    expect(kept.length).toBeLessThan(MAX_SENSORS);
    expect(kept).toEqual(all.slice(0, kept.length));
    expect(Buffer.byteLength(JSON.stringify(kept))).toBeLessThanOrEqual(STATUS_MAX_SENSOR_BYTES);
  });
});
