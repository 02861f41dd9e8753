/**
 * The dashboard's files on the Node board: the table src/admin/static.ts serves, read once from the
 * build (`npm run build:web` writes build/web; `npm start` runs it first).
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { serveStatic, staticTable, type StaticTable } from "../../src/admin/static.js";
import type { AdminResponse } from "../../src/admin/api.js";

/** Where tools/build-web.ts writes by default. */
export const WEB_BUILD_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../build/web");

/** The built table from `dir`, or undefined when nothing was built there. @throws Error for a broken build. */
export function loadWebAssets(dir = WEB_BUILD_DIR): StaticTable | undefined {
  const list = path.join(dir, "assets.json");
  if (!existsSync(list)) return undefined;
  return staticTable(JSON.parse(readFileSync(list, "utf8")), (file) => {
    const f = path.join(dir, file);
    return existsSync(f) ? readFileSync(f, "utf8") : undefined;
  });
}

/** The HTTPS server's static hook for `table` (undefined: `/` says the dashboard is not built). */
export function webHandler(table: StaticTable | undefined): (method: string, target: string) => AdminResponse | undefined {
  return (method, target) => serveStatic(table, method, target);
}
