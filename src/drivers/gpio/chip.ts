/**
 * BCM → sysfs GPIO number translation.
 *
 * Users write BCM numbers (the ones printed on the pinout). The sysfs interface numbers lines
 * globally: `gpio<base + offset>`, where `base` belongs to the gpiochip. Older Raspberry Pi
 * kernels put the SoC controller at base 0; Linux 6.6+ kernels allocate bases from 512 up
 * (Pi 4: `pinctrl-bcm2711` at 512; Pi 5: the header is on the RP1, `pinctrl-rp1`, at 571).
 *
 * Rule (documented in docs/gpio.md): among `<sysfsRoot>/class/gpio/gpiochip*`, take the first
 * chip whose `label` is in {@link SOC_GPIO_LABELS} (in that order of preference); if none
 * matches, the chip with base 0; if none, the chip with the lowest base. Without any
 * gpiochip directory the offset is 0 (and exporting will fail with a clear error).
 */
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { GatewayError } from "../../errors.js";

/** Labels of the controllers that drive the 40-pin header, most specific first. */
export const SOC_GPIO_LABELS = ["pinctrl-rp1", "pinctrl-bcm2711", "pinctrl-bcm2835"] as const;

/** One `/sys/class/gpio/gpiochipN` directory. */
export interface GpioChip {
  name: string;
  base: number;
  ngpio: number;
  label: string;
}

/** Reads every gpiochip under `<sysfsRoot>/class/gpio`. Missing directory → empty list; never rejects. */
export async function listGpioChips(sysfsRoot: string): Promise<GpioChip[]> {
  const dir = join(sysfsRoot, "class", "gpio");
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => /^gpiochip\d+$/.test(n));
  } catch {
    return [];
  }
  const chips: GpioChip[] = [];
  for (const name of names) {
    try {
      const [base, ngpio, label] = await Promise.all(
        ["base", "ngpio", "label"].map((f) => readFile(join(dir, name, f), "utf8").then((s) => s.trim())),
      );
      const b = Number(base);
      if (!Number.isInteger(b)) continue;
      const n = Number(ngpio);
      chips.push({ name, base: b, ngpio: Number.isInteger(n) ? n : 0, label: label ?? "" });
    } catch {
      // An unreadable chip is not the one we want; skip it.
    }
  }
  return chips.sort((a, b) => a.base - b.base);
}

/** Picks the chip that carries the BCM GPIOs, by the rule in the module comment. */
export function pickSocChip(chips: readonly GpioChip[]): GpioChip | undefined {
  for (const label of SOC_GPIO_LABELS) {
    const chip = chips.find((c) => c.label === label);
    if (chip) return chip;
  }
  return chips.find((c) => c.base === 0) ?? chips[0];
}

/**
 * The sysfs number for BCM `pin` given the chips found. Throws EGW_GPIO when the pin is beyond
 * the chip's `ngpio`.
 */
export function bcmToSysfs(pin: number, chip: GpioChip | undefined): number {
  if (!chip) return pin;
  if (chip.ngpio > 0 && pin >= chip.ngpio) {
    throw new GatewayError(
      "EGW_GPIO",
      `GPIO ${pin} does not exist on ${chip.label || chip.name} (BCM 0-${chip.ngpio - 1}): check the BCM number on the pinout`,
    );
  }
  return chip.base + pin;
}

/** Reads the chips and translates in one go. */
export async function resolveSysfsNumber(pin: number, sysfsRoot: string): Promise<number> {
  return bcmToSysfs(pin, pickSocChip(await listGpioChips(sysfsRoot)));
}
