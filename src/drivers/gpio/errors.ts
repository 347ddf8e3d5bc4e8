import { GatewayError, errorMessage } from "../../errors.js";

const PERMISSION_FIX =
  "add the service user to group `gpio` (sudo usermod -aG gpio <user>, then restart the service) " +
  "so it may write /sys/class/gpio/export and open /dev/gpiomem";

/**
 * Turns any failure to use GPIO `pin` into an `EGW_GPIO` {@link GatewayError} whose message
 * names the pin and the likely fix, keeping the original error as `cause`. An error that
 * already is a GatewayError is returned as is.
 */
export function explainGpioError(pin: number, err: unknown, sysfsNumber?: number): GatewayError {
  if (err instanceof GatewayError) return err;
  const code = (err as { code?: unknown } | undefined)?.code;
  const where = sysfsNumber !== undefined && sysfsNumber !== pin ? `GPIO ${pin} (sysfs gpio${sysfsNumber})` : `GPIO ${pin}`;
  let message: string;
  switch (code) {
    case "EACCES":
    case "EPERM":
      message = `${where}: permission denied: ${PERMISSION_FIX}`;
      break;
    case "EBUSY":
      message =
        `${where} is busy: another program or a kernel driver holds it ` +
        `(1-Wire w1-gpio uses GPIO 4, I2C GPIO 2/3, SPI GPIO 7-11, UART GPIO 14/15; ` +
        `or another sensor/output of this gateway): free the pin or choose another one`;
      break;
    case "EINVAL":
      message = `${where}: the kernel rejected this GPIO number: check that ${pin} is a BCM number that exists on this board`;
      break;
    case "ENOENT":
      message = `${where}: /sys/class/gpio is missing: this kernel has no sysfs GPIO interface (not a Raspberry Pi, or a container without /sys/class/gpio mounted)`;
      break;
    default:
      message = `${where}: cannot use the pin: ${errorMessage(err)}`;
  }
  return new GatewayError("EGW_GPIO", message, { cause: err });
}

/** The error when `Gpio.accessible` is false: sysfs GPIO cannot be written at all. */
export function gpioInaccessibleError(pin: number, cause?: unknown): GatewayError {
  return new GatewayError(
    "EGW_GPIO",
    `GPIO ${pin}: GPIO is not accessible (cannot open /sys/class/gpio/export for writing): ` +
      `on a Raspberry Pi, ${PERMISSION_FIX}; elsewhere this machine has no sysfs GPIO`,
    { cause },
  );
}

/** The `code` of a Node error, if any. */
export function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === "string" ? code : undefined;
}
