/**
 * The dashboard's static files, transport-free like the API: the host gives a table of built assets
 * (tools/build-web.ts writes them; the Node board reads them from build/web, the firmware from its
 * Moddable resources) and its HTTPS server asks {@link serveStatic} before the API.
 *
 * - `GET /` is the page (`index.html`): `no-cache`, so a new firmware's page is fetched at once.
 * - `GET /assets/<name>.<hash>.<ext>`: content-hashed names, so `max-age=31536000, immutable`.
 * - Every answer carries a Content-Security-Policy that allows this origin only and no inline
 *   script, `X-Content-Type-Options: nosniff`, no framing and no referrer.
 * - `/api/...` is not ours (undefined: the API answers it, `no-store`).
 */
import type { AdminResponse } from "./api.js";

/** One built file. */
export interface StaticAsset {
  readonly contentType: string;
  /** The file's text (every dashboard asset is UTF-8 text). */
  readonly body: string;
  /** True for content-hashed names: cached for a year, never revalidated. */
  readonly immutable: boolean;
}

/** Path (`/`, `/assets/app.1a2b3c4d5e.js`) → asset. */
export type StaticTable = ReadonlyMap<string, StaticAsset>;

/** Only this origin; no inline script or style; no plugins, framing, base or foreign form targets. */
export const DASHBOARD_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/** Headers on every static answer. */
export const STATIC_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  "content-security-policy": DASHBOARD_CSP,
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
});

export const IMMUTABLE = "public, max-age=31536000, immutable";

function text(status: number, message: string, extra: Record<string, string> = {}): AdminResponse {
  return { status, contentType: "text/plain; charset=utf-8", body: [message + "\n"], headers: { ...STATIC_HEADERS, "cache-control": "no-store", ...extra } };
}

/**
 * The answer for a non-API request, or undefined when `target` is an API path (`/api/...`).
 * With no table (the dashboard was not built), `/` says so with a 503.
 */
export function serveStatic(table: StaticTable | undefined, method: string, target: string): AdminResponse | undefined {
  const q = target.indexOf("?");
  const path = q < 0 ? target : target.slice(0, q);
  if (path === "/api" || path.startsWith("/api/")) return undefined;
  if (method !== "GET" && method !== "HEAD") return text(405, `${method} is not allowed here; use GET`, { allow: "GET, HEAD" });
  const key = path === "/index.html" ? "/" : path;
  const asset = table?.get(key);
  if (!asset) {
    if (!table && key === "/") return text(503, "the dashboard is not built into this gateway (npm run build:web)");
    return text(404, "not found");
  }
  return {
    status: 200,
    contentType: asset.contentType,
    body: method === "HEAD" ? [] : [asset.body],
    headers: { ...STATIC_HEADERS, "cache-control": asset.immutable ? IMMUTABLE : "no-cache" },
  };
}

/** One entry of the build's `assets.json`: where it is served, the file it is in, how. */
export interface AssetEntry {
  readonly path: string;
  readonly file: string;
  readonly contentType: string;
  readonly immutable: boolean;
}

/**
 * The table from the build's `assets.json` and a reader of its files (fs on Node, Resource on the
 * firmware). @throws Error for a malformed list or a file the reader does not have.
 */
export function staticTable(list: unknown, read: (file: string) => string | undefined): StaticTable {
  if (!Array.isArray(list)) throw new Error("assets.json must be a list");
  const table = new Map<string, StaticAsset>();
  for (const e of list as Partial<AssetEntry>[]) {
    if (typeof e?.path !== "string" || !e.path.startsWith("/") || typeof e.file !== "string" || typeof e.contentType !== "string" || typeof e.immutable !== "boolean") {
      throw new Error(`assets.json: bad entry ${JSON.stringify(e)}`);
    }
    const body = read(e.file);
    if (body === undefined) throw new Error(`assets.json: ${e.file} is missing`);
    table.set(e.path, { contentType: e.contentType, body, immutable: e.immutable });
  }
  if (!table.has("/")) throw new Error("assets.json has no page at /");
  return table;
}
