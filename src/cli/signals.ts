/**
 * SIGTERM / SIGINT for `edge-gateway run`, installed before anything else is loaded
 * (bin/edge-gateway.js imports this module first): a stop asked for during startup is
 * remembered and honoured with a clean exit 0 once the daemon can stop, instead of the
 * default action killing the process by the signal. Imports nothing, so it loads in
 * milliseconds.
 */

export interface StopSignals {
  /** Aborted by the first SIGTERM / SIGINT; `reason` is the signal name. */
  readonly signal: AbortSignal;
  /** Called on every further signal (default: exit 2 at once). */
  onRepeat(fn: (sig: NodeJS.Signals) => void): void;
}

let installed: StopSignals | undefined;

/** Installs the handlers once per process and returns them (idempotent). */
export function installStopSignals(): StopSignals {
  if (installed) return installed;
  const stop = new AbortController();
  let repeat: (sig: NodeJS.Signals) => void = () => process.exit(2);
  const onSignal = (sig: NodeJS.Signals) => {
    if (stop.signal.aborted) repeat(sig);
    else stop.abort(sig);
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  installed = {
    signal: stop.signal,
    onRepeat: (fn) => {
      repeat = fn;
    },
  };
  return installed;
}
