/**
 * The control service (DESIGN A1): a NATS micro-service named `edge-gateway` on the daemon's
 * leaf connection, so operators reach every device through the hub without an inbound port.
 * Discovery through `$SRV.PING|INFO|STATS[.edge-gateway]`; endpoints under
 * `gateway.<deviceId>.`: `status`, `read`, `output`, `reload`.
 *
 * Every request gets an answer: a JSON body, or a service error (headers
 * `Nats-Service-Error-Code` / `Nats-Service-Error`) — 400 for a malformed request, 404 for an
 * unknown sensor or output, 503 when the device cannot answer it now, 500 for anything else.
 * A handler that throws never takes the daemon down.
 */
import type { NatsConnection } from "@nats-io/nats-core";
import { Svcm, type Service, type ServiceMsg } from "@nats-io/services";
import { errorMessage } from "../errors.js";
import type { Logger } from "../logger.js";

/** The service name every gateway registers (`$SRV.PING.edge-gateway` finds them all). */
export const SERVICE_NAME = "edge-gateway";

/** An error the requester caused or should know about; `status` becomes the service error code. */
export class ControlRequestError extends Error {
  readonly status: number;
  /** Sent as the error reply's JSON body, next to `error` (e.g. `{errors: [{path, message}]}`). */
  readonly details?: Record<string, unknown>;
  constructor(status: 400 | 404 | 409 | 501 | 503, message: string, details?: Record<string, unknown>) {
    super(message);
    this.status = status;
    this.name = "ControlRequestError";
    if (details) this.details = details;
  }
}

/** Header values cannot hold line breaks: the description is one line (the body has it all). */
function headerText(text: string): string {
  const line = text.replace(/\s*[\r\n]+\s*/g, "; ");
  return line.length > 1000 ? `${line.slice(0, 997)}...` : line;
}

/** Answers a service error; never throws (a reply that cannot be sent is logged). */
function replyError(msg: ServiceMsg, status: number, message: string, details: Record<string, unknown> | undefined, logger: Logger): void {
  try {
    msg.respondError(status, headerText(message), JSON.stringify({ error: message, ...details }));
  } catch (err) {
    logger.warn({ err: errorMessage(err), status }, "control error reply could not be sent");
  }
}

/** What the endpoints do; the daemon implements them (src/daemon/operations.ts). */
export interface ControlHandlers {
  /** The status document (answered as JSON). */
  status(): unknown;
  /** A fresh reading of `sensor` where its driver can poll, else its last one. */
  read(sensor: string): Promise<unknown>;
  /** Sets GPIO output `output` to a logical value; answers its new state. */
  output(output: string, value: boolean): Promise<unknown>;
  /** Re-applies the configuration; answers what changed. */
  reload(): Promise<unknown>;
}

export interface ControlServiceOptions {
  deviceId: string;
  region: string;
  version: string;
  /** When the daemon started (ms since epoch); published in the service metadata. */
  startedAt: number;
  handlers: ControlHandlers;
  logger: Logger;
}

/** A running control service. `stop()` is safe to call twice and never rejects. */
export interface ControlService extends AsyncDisposable {
  readonly service: Service;
  stop(): Promise<void>;
}

/** The subject prefix of a device's endpoints and events. */
export function controlPrefix(deviceId: string): string {
  return `gateway.${deviceId}`;
}

const decoder = new TextDecoder();

/** Parses a request body as a JSON object; an empty body is `{}`. Throws a 400 otherwise. */
export function requestObject(msg: { data: Uint8Array }): Record<string, unknown> {
  const text = decoder.decode(msg.data).trim();
  if (text === "") return {};
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new ControlRequestError(400, `request is not JSON: ${JSON.stringify(text.slice(0, 60))}`);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new ControlRequestError(400, "request must be a JSON object");
  return v as Record<string, unknown>;
}

function stringField(req: Record<string, unknown>, key: string, example: string): string {
  const v = req[key];
  if (v === undefined) throw new ControlRequestError(400, `missing field "${key}": send ${example}`);
  if (typeof v !== "string" || v === "") throw new ControlRequestError(400, `field "${key}" must be a non-empty string: send ${example}`);
  return v;
}

/** `true|false|0|1` → boolean; anything else is a 400. */
function outputValue(req: Record<string, unknown>): boolean {
  const v = req.value;
  if (v === true || v === 1) return true;
  if (v === false || v === 0) return false;
  if (v === undefined) throw new ControlRequestError(400, 'missing field "value": send {"output": "<id>", "value": true|false|1|0}');
  throw new ControlRequestError(400, `field "value" must be true, false, 1 or 0, not ${JSON.stringify(v)}`);
}

/**
 * Registers the `edge-gateway` service on `nc` (the leaf connection; its subscriptions survive
 * reconnects, so call this once per connection). Resolves once the service listens.
 */
export async function startControlService(nc: NatsConnection, opts: ControlServiceOptions): Promise<ControlService> {
  const { handlers, logger } = opts;
  // @nats-io/services 3.0.0-25 is typed against its own (older) nats-core; the connection it
  // gets is ours and works at runtime (covered by test/control).
  const service = await new Svcm(nc as unknown as ConstructorParameters<typeof Svcm>[0]).add({
    name: SERVICE_NAME,
    version: opts.version,
    description: "edge-gateway device control: status, read a sensor, set an output, reload config",
    metadata: { device: opts.deviceId, region: opts.region, started: new Date(opts.startedAt).toISOString() },
  });

  const answer = (name: string, fn: (req: Record<string, unknown>) => unknown | Promise<unknown>) => (err: Error | null, msg: ServiceMsg) => {
    if (err) {
      logger.warn({ err: errorMessage(err), endpoint: name }, "control endpoint stopped");
      return;
    }
    void (async () => {
      try {
        const result = await fn(requestObject(msg));
        msg.respond(JSON.stringify(result));
      } catch (e) {
        if (e instanceof ControlRequestError) {
          logger.debug({ endpoint: name, status: e.status, err: e.message }, "control request refused");
          replyError(msg, e.status, e.message, e.details, logger);
        } else {
          logger.warn({ endpoint: name, err: errorMessage(e) }, "control request failed");
          replyError(msg, 500, `${name} failed: ${errorMessage(e)}`, undefined, logger);
        }
      }
    })();
  };

  const group = service.addGroup(controlPrefix(opts.deviceId));
  group.addEndpoint("status", { handler: answer("status", () => handlers.status()), metadata: { request: "{}" } });
  group.addEndpoint("read", {
    handler: answer("read", (req) => handlers.read(stringField(req, "sensor", '{"sensor": "<id>"}'))),
    metadata: { request: '{"sensor": "<id>"}' },
  });
  group.addEndpoint("output", {
    handler: answer("output", (req) => {
      const id = stringField(req, "output", '{"output": "<id>", "value": true|false}');
      return handlers.output(id, outputValue(req));
    }),
    metadata: { request: '{"output": "<id>", "value": true|false|1|0}' },
  });
  group.addEndpoint("reload", { handler: answer("reload", () => handlers.reload()), metadata: { request: "{}" } });
  logger.info({ service: SERVICE_NAME, subjects: `${controlPrefix(opts.deviceId)}.{status,read,output,reload}` }, "control service listening");

  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      if (service.isStopped || nc.isClosed()) return;
      await service.stop().catch((e: unknown) => logger.debug({ err: errorMessage(e) }, "control service stop"));
    })();
    return stopping;
  };
  return { service, stop, [Symbol.asyncDispose]: stop };
}
