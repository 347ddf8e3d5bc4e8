import { afterEach, describe, expect, it } from "vitest";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createOnoffGpioFactory, listGpioChips, pickSocChip, resolveSysfsNumber, type OnoffGpioClass } from "../../src/drivers/gpio/index.js";
import type { GpioDirection, GpioEdge } from "../../src/drivers/gpio/types.js";
import { cleanupTempDirs, tempDir } from "../helpers/procs.js";

/** Writes a fake `/sys/class/gpio` tree with the kernel's file layout. */
async function sysfsTree(chips: { base: number; ngpio: number; label: string }[]): Promise<string> {
  const root = await tempDir("sysfs-");
  const gpioDir = join(root, "class", "gpio");
  await mkdir(gpioDir, { recursive: true });
  await writeFile(join(gpioDir, "export"), "");
  await writeFile(join(gpioDir, "unexport"), "");
  for (const c of chips) {
    const dir = join(gpioDir, `gpiochip${c.base}`);
    await mkdir(dir);
    await writeFile(join(dir, "base"), `${c.base}\n`);
    await writeFile(join(dir, "ngpio"), `${c.ngpio}\n`);
    await writeFile(join(dir, "label"), `${c.label}\n`);
  }
  return root;
}

const PI4_OLD = [
  { base: 0, ngpio: 58, label: "pinctrl-bcm2711" },
  { base: 504, ngpio: 8, label: "raspberrypi-exp-gpio" },
];
const PI4_66 = [
  { base: 512, ngpio: 58, label: "pinctrl-bcm2711" },
  { base: 570, ngpio: 8, label: "raspberrypi-exp-gpio" },
];
const PI5 = [
  { base: 512, ngpio: 32, label: "gpio-brcmstb@107d508500" },
  { base: 544, ngpio: 4, label: "gpio-brcmstb@107d508520" },
  { base: 550, ngpio: 15, label: "gpio-brcmstb@107d517c00" },
  { base: 571, ngpio: 54, label: "pinctrl-rp1" },
];

describe("BCM → sysfs GPIO numbers", () => {
  afterEach(cleanupTempDirs);

  it("old kernels: pinctrl-bcm2835/2711 at base 0 → the BCM number itself", async () => {
    expect(await resolveSysfsNumber(17, await sysfsTree(PI4_OLD))).toBe(17);
    expect(await resolveSysfsNumber(4, await sysfsTree([{ base: 0, ngpio: 54, label: "pinctrl-bcm2835" }]))).toBe(4);
  });

  it("Pi 4 on 6.6+ kernels: pinctrl-bcm2711 at base 512 → 512 + BCM", async () => {
    expect(await resolveSysfsNumber(17, await sysfsTree(PI4_66))).toBe(529);
  });

  it("Pi 5: the header is on pinctrl-rp1 (base 571), not the lower-based brcmstb chips", async () => {
    const root = await sysfsTree(PI5);
    expect((await listGpioChips(root)).map((c) => c.base)).toEqual([512, 544, 550, 571]);
    expect(await resolveSysfsNumber(17, root)).toBe(588);
  });

  it("unknown labels: base 0 if present, else the lowest base; no gpiochip at all → offset 0", async () => {
    expect(pickSocChip([{ name: "gpiochip8", base: 8, ngpio: 8, label: "x" }, { name: "gpiochip0", base: 0, ngpio: 8, label: "y" }])?.base).toBe(0);
    expect(await resolveSysfsNumber(3, await sysfsTree([{ base: 600, ngpio: 32, label: "some-soc" }, { base: 700, ngpio: 8, label: "i2c-expander" }]))).toBe(603);
    expect(await resolveSysfsNumber(17, await tempDir("empty-sysfs-"))).toBe(17);
  });

  it("a BCM number beyond the chip's ngpio is an EGW_GPIO error naming the valid range", async () => {
    await expect(resolveSysfsNumber(60, await sysfsTree(PI4_66))).rejects.toThrow(/GPIO 60 does not exist on pinctrl-bcm2711 \(BCM 0-57\)/);
  });

  it("the onoff factory hands onoff the translated number, refuses a second open of the same pin, and frees it on unexport", async () => {
    const constructed: { gpio: number; direction: GpioDirection; edge: GpioEdge | undefined }[] = [];
    const unexported: number[] = [];
    // Stands in for onoff's Gpio class (which always writes the real /sys/class/gpio).
    const Gpio = class {
      static accessible = true;
      constructor(
        readonly gpio: number,
        direction: GpioDirection,
        edge?: GpioEdge,
      ) {
        constructed.push({ gpio, direction, edge });
      }
      read = async () => 0 as const;
      write = async () => undefined;
      watch = () => undefined;
      unwatchAll = () => undefined;
      unexport = () => void unexported.push(this.gpio);
    } satisfies OnoffGpioClass;
    const factory = createOnoffGpioFactory({ sysfsRoot: await sysfsTree(PI5), loadGpio: async () => Gpio });
    const pin = await factory.open(17, "in", "both");
    expect(constructed).toEqual([{ gpio: 588, direction: "in", edge: "both" }]);
    expect(pin.pin).toBe(17);
    await expect(factory.open(17, "in", "both")).rejects.toThrow(/GPIO 17 \(sysfs gpio588\) is busy/);
    pin.unexport();
    pin.unexport();
    expect(unexported).toEqual([588]);
    const again = await factory.open(17, "high");
    expect(constructed[1]).toEqual({ gpio: 588, direction: "high", edge: undefined });
    again.unexport();
  });
});
