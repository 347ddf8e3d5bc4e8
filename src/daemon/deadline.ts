/** Deadlines for the shutdown: one point in time that every step shares. */

/** Resolves with `p`'s value, or `"timeout"` when `deadline` (ms since epoch) passed first. Never rejects unless `p` does. */
export async function withDeadline<T>(p: Promise<T>, deadline: number): Promise<T | "timeout"> {
  if (deadline === Infinity) return p;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), Math.max(0, deadline - Date.now()))));
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}
