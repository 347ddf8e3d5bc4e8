/**
 * The publisher's face for existing importers (`../bridge/publisher.js`); the parts live in
 * `./publisher/` (see its index.ts).
 */
export * from "./publisher/index.js";
