// Run under the emulated arm64 Node by test/arm64/arm64.test.ts: loads the project's two native
// modules from the staged app at argv[2] and exercises them, then prints one JSON line.
//  - epoll (onoff's binding, cross-compiled for arm64): an EPOLLIN event on a real FIFO;
//  - onoff itself (loads epoll; reports whether sysfs GPIO is accessible — never here);
//  - serialport's binding: which prebuilt file node-gyp-build picks, and that it loads.
// Exits non-zero (with the error on stderr) when anything fails.
import { execFileSync } from "node:child_process";
import { closeSync, constants, openSync, unlinkSync, writeSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

const root = process.argv[2];
if (!root) throw new Error("usage: native-probe.mjs <staged app root>");
const require = createRequire(join(root, "package.json"));

const epollFile = require.resolve("epoll/build/Release/epoll.node");
const { Epoll } = require("epoll");
const fifo = join(tmpdir(), `egw-arm64-fifo-${process.pid}`);
execFileSync("mkfifo", [fifo]);
const epollEvent = await new Promise((resolve, reject) => {
  const fd = openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK);
  const timer = setTimeout(() => reject(new Error("no EPOLLIN event within 20 s")), 20_000);
  const poller = new Epoll((err, eventFd, events) => {
    clearTimeout(timer);
    poller.remove(fd).close();
    closeSync(fd);
    if (err) reject(err);
    else resolve({ sameFd: eventFd === fd, epollin: (events & Epoll.EPOLLIN) !== 0 });
  });
  poller.add(fd, Epoll.EPOLLIN);
  writeSync(fd, "x");
}).finally(() => unlinkSync(fifo));

const onoff = require("onoff");

const bindingsDir = dirname(require.resolve("@serialport/bindings-cpp/package.json"));
const gypBuild = createRequire(join(bindingsDir, "package.json"))("node-gyp-build");
const serialBindingFile = gypBuild.path(bindingsDir);
const serialBinding = gypBuild(bindingsDir);

console.log(
  JSON.stringify({
    arch: process.arch,
    version: process.version,
    epollFile,
    epollEvent,
    onoffGpio: typeof onoff.Gpio,
    gpioAccessible: onoff.Gpio.accessible,
    serialBindingFile,
    serialBindingOpen: typeof serialBinding.open,
  }),
);
