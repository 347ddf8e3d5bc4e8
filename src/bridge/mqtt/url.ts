/** `mqtt://user:secret@host` → `mqtt://host`: a broker URL fit for logs and status. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = "";
    u.password = "";
    return u.toString().replace(/\/$/, "");
  } catch {
    return "(invalid url)";
  }
}
