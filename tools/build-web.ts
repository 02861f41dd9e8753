/**
 * Builds the dashboard (web/) into `build/web/` (not committed; `npm run build:web`, run by
 * `npm start`, the dashboard tests and the firmware build):
 *   index.html                 the page, served at `/` (no-cache)
 *   assets/app.<hash>.js       web/app.js + web/api.js bundled and minified by esbuild (immutable)
 *   assets/app.<hash>.css      web/app.css minified (immutable)
 *   assets.json                the table src/admin/static.ts serves from
 * The hash is the first 10 hex digits of the file's SHA-256, so equal sources give equal names.
 *
 *   tsx tools/build-web.ts [--out <dir>]   prints each file and the gzipped total
 */
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { build, transform } from "esbuild";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const WEB_SRC = path.join(ROOT, "web");
export const WEB_OUT = path.join(ROOT, "build", "web");
/** The budget for all the dashboard's assets together, gzipped. */
export const WEB_BUDGET_GZIP_BYTES = 50 * 1024;

export interface BuiltAsset {
  readonly path: string;
  readonly file: string;
  readonly contentType: string;
  readonly immutable: boolean;
  readonly bytes: number;
  readonly gzipBytes: number;
}

const hash = (s: string): string => createHash("sha256").update(s).digest("hex").slice(0, 10);

/** Builds into `out` (emptied first); returns what it wrote. */
export async function buildWeb(out = WEB_OUT): Promise<BuiltAsset[]> {
  const js = await build({
    entryPoints: [path.join(WEB_SRC, "app.js")], bundle: true, minify: true, write: false, format: "iife",
    target: "es2020", legalComments: "none", charset: "utf8",
  });
  const jsText = js.outputFiles[0]!.text;
  const css = await transform(readFileSync(path.join(WEB_SRC, "app.css"), "utf8"), { loader: "css", minify: true });
  const jsFile = `assets/app.${hash(jsText)}.js`;
  const cssFile = `assets/app.${hash(css.code)}.css`;
  const html = readFileSync(path.join(WEB_SRC, "index.html"), "utf8")
    .replace("{{app.js}}", `/${jsFile}`)
    .replace("{{app.css}}", `/${cssFile}`)
    .replace(/\n\s*/g, "\n");
  if (html.includes("{{")) throw new Error("web/index.html: a placeholder was not replaced");
  const files: [string, string, string, boolean, string][] = [
    ["/", "index.html", "text/html; charset=utf-8", false, html],
    [`/${jsFile}`, jsFile, "text/javascript; charset=utf-8", true, jsText],
    [`/${cssFile}`, cssFile, "text/css; charset=utf-8", true, css.code],
  ];
  rmSync(out, { recursive: true, force: true });
  mkdirSync(path.join(out, "assets"), { recursive: true });
  const built: BuiltAsset[] = [];
  for (const [p, file, contentType, immutable, body] of files) {
    writeFileSync(path.join(out, file), body);
    built.push({ path: p, file, contentType, immutable, bytes: Buffer.byteLength(body), gzipBytes: gzipSync(body, { level: 9 }).length });
  }
  writeFileSync(path.join(out, "assets.json"), JSON.stringify(built.map(({ path: p, file, contentType, immutable }) => ({ path: p, file, contentType, immutable })), null, 1) + "\n");
  return built;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf("--out");
  const out = i > 0 ? path.resolve(process.argv[i + 1] ?? "") : WEB_OUT;
  const built = await buildWeb(out);
  for (const b of built) console.log(`build-web: ${b.file} ${b.bytes} B (${b.gzipBytes} B gzipped)`);
  const total = built.reduce((n, b) => n + b.gzipBytes, 0);
  console.log(`build-web: ${out}: ${total} B gzipped of the ${WEB_BUDGET_GZIP_BYTES} B budget`);
  if (total > WEB_BUDGET_GZIP_BYTES) {
    console.error("build-web: over budget");
    process.exitCode = 1;
  }
}
