/**
 * The serial seam. Types only: this file imports no implementation.
 *
 * Production code opens ports through `serialport` ({@link import("./node-serial.js")}); tests put
 * a real pseudo-terminal (socat) behind the same factory, or implement the interface themselves.
 */

/** Line settings for opening a port. */
export interface SerialOpenOptions {
  /** Device path; symlinks such as `/dev/serial/by-id/…` are resolved by the OS on every open. */
  path: string;
  baudRate: number;
  dataBits?: 7 | 8;
  stopBits?: 1 | 2;
  parity?: "none" | "even" | "odd";
}

/** Callbacks a connection delivers to; called in order, never after `onClose`. */
export interface SerialHandlers {
  /** A chunk of received bytes, split wherever the OS split it. */
  onData(chunk: Buffer): void;
  /**
   * The connection ended. `error` is set when it ended by itself (device unplugged, I/O error),
   * and unset after {@link SerialConnection.close}. Called at most once.
   */
  onClose(error?: Error): void;
}

/** One open serial device. */
export interface SerialConnection {
  /** Writes and waits until the bytes are handed to the OS. Rejects if the port is gone. */
  write(data: Buffer): Promise<void>;
  /** Closes the device. Safe to call twice; resolves, never rejects. */
  close(): Promise<void>;
}

/**
 * Opens serial devices. `open` rejects (with a `GatewayError` code `EGW_SERIAL_OPEN` in
 * production) when the device does not exist or cannot be opened.
 */
export interface SerialPortFactory {
  open(options: SerialOpenOptions, handlers: SerialHandlers): Promise<SerialConnection>;
}
