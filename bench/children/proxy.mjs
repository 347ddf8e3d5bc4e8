// The catch-up's leaf link (dist/demo/tcp-proxy.js) in a process of its own, so the bench's own
// event loop (the in-process daemon, the API polling) does not throttle the link it measures.
// Run in the bench process, the same proxy carried 14-19k readings/s where alone it carries more.
//
//   node proxy.mjs <target-port>    prints `port <n>`; reads `cut` / `restore` lines on stdin and
//                                   answers each with `ok <command>`; exits when stdin closes.
import { createInterface } from "node:readline";
import { TcpProxy } from "../../dist/demo/tcp-proxy.js";

const proxy = await TcpProxy.start(Number(process.argv[2]));
process.stdout.write(`port ${proxy.port}\n`);
for await (const line of createInterface({ input: process.stdin })) {
  const cmd = line.trim();
  if (cmd === "cut") await proxy.cut();
  else if (cmd === "restore") await proxy.restore();
  else continue;
  process.stdout.write(`ok ${cmd}\n`);
}
await proxy.close();
process.exit(0);
