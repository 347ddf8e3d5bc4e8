// Writes docs/configuration.md from the schema: `npm run docs:config`.
import { writeFileSync } from "node:fs";
import { renderConfigReference } from "../src/config/reference.js";

writeFileSync(new URL("../docs/configuration.md", import.meta.url), renderConfigReference());
console.log("wrote docs/configuration.md");
