/** Serial drivers: `serial-lines`, `pms5003`, `nmea`, `modbus-rtu`, and their shared port manager. */
export type * from "./types.js";
export { nodeSerialFactory } from "./node-serial.js";
export { PortManager, type PortLease, type PortUser } from "./port.js";
export { portManagerFor, type RejectReason } from "./common.js";
export { createSerialLines, LineSplitter, lineParser } from "./lines.js";
export { createPms5003, Pms5003Parser, buildPms5003Frame, PMS5003_VALUES, PMS5003_UNITS } from "./pms5003.js";
export { createNmea, parseNmea, NmeaFix, NMEA_UNITS } from "./nmea.js";
export { createModbusRtu, decodeRegister } from "./modbus.js";
