import { afterAll, describe, expect, it } from "vitest";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { cleanupNats, startHubAndLeaves, startJetStreamServer, waitForLeafLink } from "../helpers/nats.js";
import { cleanupTempDirs } from "../helpers/procs.js";
import { waitFor } from "../helpers/wait.js";

afterAll(async () => {
  await cleanupNats();
  await cleanupTempDirs();
});

describe("test harness › nats-server", () => {
  it("starts a JetStream server that survives kill -9 with its store", async () => {
    const s = await startJetStreamServer();
    let nc = await s.connect();
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: "S", subjects: ["s.>"] });
    await jetstream(nc).publish("s.a", "x");
    await nc.close();
    const port = s.clientPort;
    await s.kill9();
    expect(s.running).toBe(false);
    await s.restart();
    expect(s.clientPort).toBe(port);
    nc = await s.connect();
    const info = await (await jetstreamManager(nc)).streams.info("S");
    expect(info.state.messages).toBe(1);
    await nc.close();
    await s.stop();
  });

  it("connects leaves with their own domains to a hub, and the link can be cut", async () => {
    const env = await startHubAndLeaves(["dev-a"]);
    try {
      const nc = await env.hub.connect();
      // The hub reaches the leaf's JetStream through its domain.
      // The leaf's $JS.dev-a.API interest reaches the hub a moment after the link is up, so
      // the API check waits too (checkAPI: false, else the constructor asks once and fails).
      const remote = await jetstreamManager(nc, { domain: "dev-a", checkAPI: false });
      await waitFor(async () => (await remote.getAccountInfo()).domain === "dev-a", { what: "leaf domain via hub" });
      await env.links[0]!.cut();
      await waitFor(() => /Leafnode connection closed/.test(env.leaves[0]!.log()), { what: "link down" });
      await env.links[0]!.restore();
      await waitForLeafLink(env.leaves[0]!);
      await nc.close();
    } finally {
      await env.stop();
    }
  });
});
