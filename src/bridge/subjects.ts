/**
 * The subject contract (DESIGN A1) and the deduplication key (A2), in one place: everything that
 * builds or matches a reading's subject uses these.
 */

/**
 * `sensors.<type>.<region>.<deviceId>.<sensorId>` (DESIGN A1: the `<id>` is hierarchical, device
 * then sensor, so the hub can scope each device to `sensors.*.*.<deviceId>.>`). Tokens were
 * validated by the schema.
 */
export function readingSubject(type: string, region: string, device: string, sensor: string): string {
  return `sensors.${type}.${region}.${device}.${sensor}`;
}

/** Every subject a device's readings can have, whatever their type or region: `sensors.*.*.<deviceId>.>`. */
export function deviceReadingsFilter(device: string): string {
  return `sensors.*.*.${device}.>`;
}

/** `<device>.<sensor>.<seq>`: the deduplication key, stable across retries and restarts. */
export function readingMsgId(device: string, sensor: string, seq: number): string {
  return `${device}.${sensor}.${seq}`;
}
