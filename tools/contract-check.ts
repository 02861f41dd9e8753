/**
 * `npm run contract:check -- <file or dir> ...`: validates integration contracts (format v1).
 * Prints one line per error, `file: /json/path: message`, and exits 1 when any contract is invalid,
 * 2 on bad arguments or unreadable paths, 0 when every contract is valid.
 */
import { readFileSync, readdirSync, statSync } from "node:fs";
import path from "node:path";
import { parseContract } from "../src/policy/contract.js";

const USAGE = "usage: npm run contract:check -- <contract.json | directory> ...\n  A directory is searched recursively for *.json files.";

function collect(p: string, out: string[]): void {
  const st = statSync(p);
  if (st.isDirectory()) {
    for (const name of readdirSync(p).sort()) {
      const child = path.join(p, name);
      if (statSync(child).isDirectory() || name.endsWith(".json")) collect(child, out);
    }
  } else out.push(p);
}

/** Checks every file under `args`; returns the exit code and the lines to print. */
export function check(args: readonly string[]): { code: number; lines: string[] } {
  if (args.length === 0 || args.some((a) => a === "-h" || a === "--help")) return { code: 2, lines: [USAGE] };
  const files: string[] = [];
  for (const a of args) {
    try {
      collect(a, files);
    } catch (e) {
      return { code: 2, lines: [`${a}: cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)})`, USAGE] };
    }
  }
  if (files.length === 0) return { code: 2, lines: [`no *.json files found in ${args.join(", ")}`] };
  const lines: string[] = [];
  let bad = 0;
  for (const f of files) {
    const r = parseContract(readFileSync(f, "utf8"));
    if (r.ok) continue;
    bad++;
    for (const e of r.errors) lines.push(`${f}: ${e.path || "(root)"}: ${e.message}`);
  }
  lines.push(bad ? `${bad} of ${files.length} contract(s) invalid` : `${files.length} contract(s) valid`);
  return { code: bad ? 1 : 0, lines };
}

const r = check(process.argv.slice(2));
(r.code === 0 ? process.stdout : r.code === 2 ? process.stderr : process.stdout).write(r.lines.join("\n") + "\n");
process.exitCode = r.code;
