/**
 * The dashboard's files on the firmware: tools/build-web.ts writes build/web (the firmware build runs
 * it first), manifest.json puts its files into the image as resources (flat names: `assets/` is
 * dropped), and this builds the table src/admin/static.ts serves. A file's text is read from flash
 * when it is served, so the ~20 KB of assets never sit in the heap between requests.
 */
import Resource from "Resource";
import { serveStatic, type StaticAsset, type StaticTable } from "portcullis/admin/static";
import type { AdminResponse } from "portcullis/admin/api";

interface Entry {
  readonly path: string;
  readonly file: string;
  readonly contentType: string;
  readonly immutable: boolean;
}

const text = (name: string): string => String.fromArrayBuffer(new Resource(name).slice(0) as ArrayBuffer);
const flat = (file: string): string => file.slice(file.lastIndexOf("/") + 1);

/** The table from the image's resources, or undefined when the image has no (whole) dashboard: `/` then answers 503. */
export function loadWebAssets(): StaticTable | undefined {
  try {
    return load();
  } catch {
    return undefined; // a broken build costs the page, never the gateway
  }
}

function load(): StaticTable | undefined {
  if (!Resource.exists("assets.json")) return undefined;
  const list = JSON.parse(text("assets.json")) as Entry[];
  const table = new Map<string, StaticAsset>();
  for (const e of list) {
    const name = flat(e.file);
    if (!Resource.exists(name)) throw new Error(`dashboard: resource ${name} missing`);
    table.set(e.path, { contentType: e.contentType, immutable: e.immutable, get body() { return text(name); } });
  }
  return table;
}

/** The admin server's static hook for `table`. */
export function webHandler(table: StaticTable | undefined): (method: string, target: string) => AdminResponse | undefined {
  return (method, target) => serveStatic(table, method, target);
}
