// Same as bin/edge-gateway.js, but on the TypeScript sources (for tests).
import { main } from "../../src/cli/main.js";

process.exitCode = await main(process.argv.slice(2));
