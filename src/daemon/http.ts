/**
 * The loopback HTTP endpoint (config `http: {listen}`): `GET /healthz` and `GET /metrics`.
 * node:http, no framework. A port that cannot be bound is logged as an error and the daemon
 * keeps running without it.
 */
import { createServer, type Server } from "node:http";
import type { Registry } from "prom-client";
import { errorMessage } from "../errors.js";
import type { Logger } from "../logger.js";

/** Whether the publisher accepts readings for the leaf, and if not, why. */
export interface Health {
  ok: boolean;
  /** Why not ok, e.g. `local leaf unreachable; 1234 readings queued`. */
  reason?: string;
  [key: string]: unknown;
}

export interface HttpEndpointOptions {
  /** `HOST:PORT`; port 0 picks a free one (see `address`). */
  listen: string;
  health: () => Health;
  metrics: Registry;
  logger: Logger;
}

export interface HttpEndpoint extends AsyncDisposable {
  /** The bound `host:port`, or undefined when listening failed. */
  readonly address: string | undefined;
  close(): Promise<void>;
}

function splitListen(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(":");
  return { host: listen.slice(0, i) || "127.0.0.1", port: Number(listen.slice(i + 1)) };
}

/**
 * Starts listening; resolves once listening or once listening failed (then `address` is
 * undefined and the error was logged). Never rejects.
 */
export async function startHttpEndpoint(opts: HttpEndpointOptions): Promise<HttpEndpoint> {
  const { logger } = opts;
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain" }).end("method not allowed\n");
      return;
    }
    if (path === "/healthz") {
      const h = opts.health();
      const { ok, reason, ...rest } = h;
      const body = JSON.stringify(ok ? { status: "ok", ...rest } : { status: "unavailable", reason, ...rest });
      res.writeHead(ok ? 200 : 503, { "content-type": "application/json", "cache-control": "no-store" }).end(`${body}\n`);
      return;
    }
    if (path === "/metrics") {
      opts.metrics.metrics().then(
        (text) => res.writeHead(200, { "content-type": opts.metrics.contentType }).end(text),
        (err: unknown) => {
          logger.warn({ err: errorMessage(err) }, "metrics collection failed");
          res.writeHead(500, { "content-type": "text/plain" }).end(`metrics collection failed: ${errorMessage(err)}\n`);
        },
      );
      return;
    }
    res.writeHead(404, { "content-type": "text/plain" }).end("not found: try /healthz or /metrics\n");
  });
  server.keepAliveTimeout = 5000;
  const { host, port } = splitListen(opts.listen);
  const address = await new Promise<string | undefined>((resolve) => {
    const onError = (err: NodeJS.ErrnoException) => {
      const hint =
        err.code === "EADDRINUSE"
          ? `port ${port} is in use by another process: set http.listen to a free port, or http: false`
          : err.code === "EADDRNOTAVAIL"
            ? `${host} is not an address of this machine: use 127.0.0.1`
            : "check http.listen";
      logger.error({ err: errorMessage(err), listen: opts.listen }, `cannot serve /healthz and /metrics on ${opts.listen}: ${hint}; the daemon runs on without them`);
      resolve(undefined);
    };
    server.once("error", onError);
    server.listen(port, host, () => {
      server.off("error", onError);
      const a = server.address();
      resolve(a && typeof a === "object" ? `${a.address}:${a.port}` : opts.listen);
    });
  });
  if (address) {
    server.on("error", (err) => logger.warn({ err: errorMessage(err) }, "http endpoint error"));
    logger.info({ listen: address }, "serving /healthz and /metrics");
  }
  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= address
      ? new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        })
      : Promise.resolve();
    return closing;
  };
  return { address, close, [Symbol.asyncDispose]: close };
}
