/**
 * The subject-token rule on its own, without zod: the CLI's argument checks use it, and
 * importing it must not load the whole config schema (`edge-gateway --help` stays small).
 */

/** Every subject token must match this (DESIGN A1). */
export const SUBJECT_TOKEN = /^[A-Za-z0-9_-]+$/;
