/**
 * SPEC.md's route × role table is the single source of who may call what: this parses the table and
 * compares it, route by route, with the running Node board's `gateway.admin.routes` (method, path,
 * roles). A route in the code but not in the table, a row not in the code (unless marked pending),
 * or different roles: the test fails and says which.
 */
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { PassThrough } from "node:stream";
import { bootNodeBoard } from "../../hosts/node/board.js";

interface Row {
  method: string;
  path: string;
  roles: string;
  pending: boolean;
}

/** The rows between `<!-- route-table -->` and `<!-- /route-table -->`. */
export function specRouteTable(text: string): Row[] {
  const start = text.indexOf("<!-- route-table -->");
  const end = text.indexOf("<!-- /route-table -->");
  assert.ok(start >= 0 && end > start, "SPEC.md has the route-table markers");
  const rows: Row[] = [];
  for (const line of text.slice(start, end).split("\n")) {
    const cells = line.split("|").slice(1, -1).map((c) => c.trim());
    if (cells.length < 4 || cells[0] === "method" || /^-+$/.test(cells[0]!)) continue;
    rows.push({ method: cells[0]!, path: cells[1]!, roles: cells[2]!, pending: cells[3]!.includes("(pending)") });
  }
  return rows;
}

/** Path parameters compare by position, not name: `{id}` = `{name}`. */
const norm = (p: string): string => p.replace(/\{[^}]*\}/g, "{}");
const rolesOf = (r: { roles: readonly string[]; public?: boolean | undefined }): string => (r.public ? "public" : [...r.roles].sort().join(", "));
const sortRoles = (s: string): string => s.split(",").map((x) => x.trim()).filter(Boolean).sort().join(", ");

describe("SPEC.md route × role table", () => {
  it("parses the table (every row: a method, an /api/v1/ path, known roles)", () => {
    const rows = specRouteTable(readFileSync("SPEC.md", "utf8"));
    assert.ok(rows.length >= 16);
    for (const r of rows) {
      assert.match(r.method, /^(GET|POST|PUT|DELETE)$/, JSON.stringify(r));
      assert.match(r.path, /^\/api\/v1\//, JSON.stringify(r));
      for (const role of r.roles.split(",").map((x) => x.trim())) assert.ok(["owner", "auditor", "installer", "public"].includes(role), `${r.method} ${r.path}: role "${role}"`);
    }
    const keys = rows.map((r) => `${r.method} ${norm(r.path)}`);
    assert.equal(new Set(keys).size, keys.length, "no row twice");
  });

  it("matches the gateway's routes exactly (pending rows skipped until they exist)", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "pc-routes-"));
    cpSync("examples/home", path.join(dir, "home"), { recursive: true });
    const board = await bootNodeBoard({ configDir: path.join(dir, "home"), dataDir: path.join(dir, "data"), mqttPort: 0, httpsPort: 0, demo: false, consoleInput: new PassThrough(), consoleOutput: new PassThrough() });
    try {
      const rows = specRouteTable(readFileSync("SPEC.md", "utf8"));
      const table = new Map(rows.map((r) => [`${r.method} ${norm(r.path)}`, r]));
      const problems: string[] = [];
      const seen = new Set<string>();
      for (const route of board.gateway.admin.routes) {
        const key = `${route.method} ${norm(route.path)}`;
        seen.add(key);
        const row = table.get(key);
        if (!row) problems.push(`${route.method} ${route.path} is served but not in SPEC.md's table`);
        else if (sortRoles(row.roles) !== rolesOf(route)) problems.push(`${route.method} ${route.path}: SPEC.md says ${sortRoles(row.roles)}, the code ${rolesOf(route)}`);
        else if (row.pending) problems.push(`${route.method} ${route.path} exists now: drop "(pending)" from its row`);
      }
      for (const [key, row] of table) if (!row.pending && !seen.has(key)) problems.push(`${key} is in SPEC.md's table but not served`);
      assert.deepEqual(problems, []);
    } finally {
      await board.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
