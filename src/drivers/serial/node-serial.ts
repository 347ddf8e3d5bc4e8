import { GatewayError, errorMessage } from "../../errors.js";
import type { SerialConnection, SerialHandlers, SerialOpenOptions, SerialPortFactory } from "./types.js";

/**
 * The production {@link SerialPortFactory}, on `serialport` 13. The native module is loaded on
 * the first `open`, so importing this file costs nothing on machines without serial sensors.
 * It never calls `SerialPort.list()` (which spawns `udevadm`, absent in containers).
 */
export function nodeSerialFactory(): SerialPortFactory {
  return {
    async open(options: SerialOpenOptions, handlers: SerialHandlers): Promise<SerialConnection> {
      let SerialPort: typeof import("serialport").SerialPort;
      try {
        ({ SerialPort } = await import("serialport"));
      } catch (err) {
        throw new GatewayError("EGW_SERIAL_OPEN", `cannot load the serialport module: ${errorMessage(err)}`, { cause: err });
      }
      const port = new SerialPort({
        path: options.path,
        baudRate: options.baudRate,
        dataBits: options.dataBits ?? 8,
        stopBits: options.stopBits ?? 1,
        parity: options.parity ?? "none",
        autoOpen: false,
        // Another process holding the port is an error worth seeing, not something to share.
        lock: true,
      });
      await new Promise<void>((resolve, reject) => {
        port.open((err) => {
          if (err) reject(new GatewayError("EGW_SERIAL_OPEN", `cannot open serial port ${options.path}: ${err.message}`, { cause: err }));
          else resolve();
        });
      });

      let closing = false;
      let ended = false;
      const end = (error?: Error) => {
        if (ended) return;
        ended = true;
        handlers.onClose(error);
      };
      port.on("data", (chunk: Buffer) => {
        if (!ended) handlers.onData(chunk);
      });
      // serialport emits 'error' for failed writes/reads and 'close' (with `disconnected`) when
      // the device vanished; both end this connection so the port manager reopens it.
      port.on("error", (err: Error) => {
        if (closing) return;
        end(new GatewayError("EGW_SERIAL_OPEN", `serial port ${options.path} failed: ${err.message}`, { cause: err }));
        if (port.isOpen) port.close(() => undefined);
      });
      port.on("close", (err?: Error | null) => {
        if (closing || !err) return end();
        end(new GatewayError("EGW_SERIAL_OPEN", `serial port ${options.path} disconnected: ${err.message}`, { cause: err }));
      });

      return {
        write(data: Buffer): Promise<void> {
          return new Promise((resolve, reject) => {
            if (ended || !port.isOpen) {
              reject(new GatewayError("EGW_SERIAL_OPEN", `serial port ${options.path} is not open`));
              return;
            }
            port.write(data, (err) => {
              if (err) reject(new GatewayError("EGW_SERIAL_OPEN", `write to ${options.path} failed: ${err.message}`, { cause: err }));
              else port.drain(() => resolve());
            });
          });
        },
        close(): Promise<void> {
          closing = true;
          return new Promise((resolve) => {
            const done = () => {
              end();
              resolve();
            };
            if (!port.isOpen) return done();
            port.close(() => done());
          });
        },
      };
    },
  };
}
