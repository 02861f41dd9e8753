/**
 * The console's incident commands: `incident open|list|show|timeline|note|notify|notice|resolve|review`
 * and `device disable|enable`. Who acted is "console" (role owner, via console). Errors name the bad
 * argument and the fix.
 */
import type { Board } from "../ports.js";
import type { Gateway } from "../gateway.js";
import { recordLines } from "../admin/api.js";
import { CONSOLE_ACTOR, IncidentError, type IncidentManager } from "./manager.js";
import { leftText } from "./deadlines.js";
import type { Incident } from "./model.js";
import { exitIntegration } from "./exit.js";
import type { TableCommand } from "../console/shell.js";
import { frozenTable } from "../util/frozen.js";

const USAGE = [
  "incident open <title> [--integration <id>]… [--device <id>]… [--severity low|medium|high] [--aware <ISO time>] [--alarm <seq>]",
  "incident list | show <id> | timeline <id> | note <id> <text> | notify <id> <party> [reference]",
  "incident notice <id> | resolve <id> | review <id> --prevent <text> [--action <text>]… | evidence <id>",
].join("\n");

/** Splits words into flag values (`--name value…` up to the next flag) and the rest. */
export function parseFlags(words: readonly string[], multi: readonly string[]): { rest: string[]; flags: Map<string, string[]> } {
  const flags = new Map<string, string[]>();
  const rest: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    if (!w.startsWith("--")) {
      rest.push(w);
      continue;
    }
    const name = w.slice(2);
    const vals: string[] = [];
    // Multi-word flags (--prevent, --action) take words up to the next flag; others take one word.
    if (multi.includes(name)) while (i + 1 < words.length && !words[i + 1]!.startsWith("--")) vals.push(words[++i]!);
    else if (i + 1 < words.length) vals.push(words[++i]!);
    (flags.get(name) ?? flags.set(name, []).get(name)!).push(vals.join(" "));
  }
  return { rest, flags };
}

export function showIncident(m: IncidentManager, inc: Incident): string {
  const d = m.deadlines(inc);
  const tl = m.timeline(inc.id);
  return [
    `${inc.id}  ${inc.state}  ${inc.severity}  ${inc.title}`,
    `scope     integrations ${inc.integrations.join(", ") || "-"}; devices ${inc.devices.join(", ") || "-"}`,
    `aware     ${new Date(inc.awareAt).toISOString()}${inc.clockSet ? "" : " (clock was not set: deadlines run on time since boot)"}; detected by ${inc.detectedBy === "owner" ? "owner" : `alarm record ${inc.detectedBy}`}`,
    `evidence  ${inc.evidenceSeq !== undefined ? `record ${inc.evidenceSeq}, seal ${inc.sealSeq} chain ${inc.sealChain}` : "none (no scope)"}`,
    `deadlines (in order; ${d.basis === "wall" ? "wall clock" : "monotonic time since boot: the wall clock is not set"})`,
    ...d.list.map((x) => `  ${x.kind.padEnd(10)} ${x.id.padEnd(24)} ${String(x.hours).padStart(4)} h  ${leftText(x)}`),
    ...(d.warning ? [`WARNING: ${d.warning}`] : []),
    ...(inc.reviewDueAt !== undefined && inc.state === "resolved" ? [`review due ${new Date(inc.reviewDueAt).toISOString()}`] : []),
    `timeline  ${tl.length} records; last:`,
    ...tl.slice(-5).map((r) => `  ${r.seq} ${new Date(r.time).toISOString()} ${r.kind} ${r.decision} ${r.reason ?? ""}${r.integration ? ` ${r.integration}` : ""}${r.device ? ` ${r.device}` : ""}`),
  ].join("\n");
}

/** What the incident commands act on: one object per gateway; the table below is built at preload. */
interface Context {
  readonly g: Gateway;
  readonly board: Board;
}

async function runIncident(args: readonly string[], g: Gateway): Promise<string> {
  const m = g.incidents;
  const [sub, id, ...more] = args;
  switch (sub) {
    case "open": {
      const { rest, flags } = parseFlags(args.slice(1), []);
      const aware = flags.get("aware")?.[0];
      const awareAt = aware === undefined ? undefined : Date.parse(aware);
      if (awareAt !== undefined && Number.isNaN(awareAt)) return `error: --aware "${aware}" is not an ISO time (e.g. 2026-12-01T18:00:00Z)`;
      const alarm = flags.get("alarm")?.[0];
      if (alarm !== undefined && !/^[1-9][0-9]*$/.test(alarm)) return `error: --alarm "${alarm}" is not a record seq (see \`audit 20 alarm\`)`;
      for (const k of flags.keys()) if (!["integration", "device", "severity", "aware", "alarm"].includes(k)) return `error: unknown option --${k}\n${USAGE}`;
      const sev = flags.get("severity")?.[0];
      const inc = await m.open({ title: rest.join(" "), integrations: flags.get("integration") ?? [], devices: flags.get("device") ?? [], ...(sev !== undefined ? { severity: sev } : {}), ...(awareAt !== undefined ? { awareAt } : {}), ...(alarm !== undefined ? { detectedBy: Number(alarm) } : {}) }, CONSOLE_ACTOR);
      return `opened ${inc.id}${inc.state === "contained" ? ": contained (quarantined, credentials disabled, legal hold, epoch sealed, evidence recorded)" : ""}\n${showIncident(m, inc)}`;
    }
    case "list":
      return m.list().map((i) => {
        const next = i.state === "reviewed" ? undefined : m.deadlines(i).list.filter((d) => d.leftMs !== undefined).sort((a, b) => a.leftMs! - b.leftMs!)[0];
        return `${i.id}  ${i.state.padEnd(9)}  ${i.severity.padEnd(6)}  ${i.title}${next ? `  (next: ${next.id}, ${leftText(next)})` : ""}`;
      }).join("\n") || "no incidents";
    case "show":
      return showIncident(m, m.get(id ?? ""));
    case "timeline":
      return m.timeline(id ?? "").flatMap((r) => recordLines(r).map((l) => JSON.stringify(l))).join("\n") || "no records";
    case "note":
      return `note recorded (record ${await m.note(id ?? "", more.join(" "), CONSOLE_ACTOR)})`;
    case "notify": {
      if (!more[0]) return `error: give the party told; one of ${m.parties(m.get(id ?? "")).map((p) => p.id).join(", ")}`;
      return `notification of ${more[0]} recorded (record ${await m.notify(id ?? "", more[0], more.slice(1).join(" "), CONSOLE_ACTOR)})`;
    }
    case "notice": {
      const n = await m.notice(id ?? "", CONSOLE_ACTOR);
      return `${n.markdown}\n(${n.recorded === "new" ? "recorded as" : "unchanged since"} record ${n.seq}: SHA-256 of the JSON ${n.sha256Json}, of this Markdown ${n.sha256Markdown})`;
    }
    case "resolve":
      return `resolved (record ${await m.resolve(id ?? "", CONSOLE_ACTOR)}); the post-incident review is due within ${m.reviewDays} days: \`incident review ${id} --prevent <text> [--action <text>]…\``;
    case "review": {
      const { flags } = parseFlags(more, ["prevent", "action"]);
      const prevent = flags.get("prevent")?.[0];
      if (prevent === undefined) return `error: give --prevent <what would have prevented it>\n${USAGE}`;
      const seq = await m.review(id ?? "", prevent, flags.get("action") ?? [], CONSOLE_ACTOR);
      return `${m.reviewReport(id!).markdown}\n(reviewed: record ${seq})`;
    }
    case "evidence": {
      const inc = m.get(id ?? "");
      const lines = await g.audit.exportJsonl(m.windowFirstSeq(inc), undefined);
      return lines.join("\n");
    }
    default:
      return USAGE;
  }
}

/** The incident, exit and device commands, a frozen module-level table (src/util/frozen.ts). */
const INCIDENT_COMMANDS: readonly TableCommand<Context>[] = frozenTable<TableCommand<Context>>([
  {
    name: "incident",
    summary: "incident open|list|show|timeline|note|notify|notice|resolve|review|evidence (`incident` for usage)",
    run: async (args, c) => {
      try {
        return await runIncident(args, c.g);
      } catch (e) {
        if (e instanceof IncidentError) return `error: ${e.message}`;
        throw e;
      }
    },
  },
  {
    name: "exit",
    summary: "exit <integration>: export for the owner, then quarantine, purge queue, destroy pseudonym key, remove contract; deletion certificate",
    run: async (args, c) => {
      if (!args[0]) return "usage: exit <integration> (see `integrations`)";
      try {
        const r = await exitIntegration(c.board, c.g, args[0], CONSOLE_ACTOR);
        return `${r.markdown}\n(the export: \`GET /api/v1/audit/export?from=${r.certificate.export.from}&to=${r.certificate.export.to}\`, or POST /api/v1/integrations/${args[0]}/exit returns it inline)`;
      } catch (e) {
        if (e instanceof IncidentError) return `error: ${e.message}`;
        throw e;
      }
    },
  },
  {
    name: "device",
    summary: "device disable|enable <id>: refuse (CONNACK 5, session closed) or re-admit a device's credentials",
    run: async (args, c) => {
      const [sub, id] = args;
      if ((sub !== "disable" && sub !== "enable") || !id) return "usage: device disable|enable <id>";
      try {
        const who = { who: CONSOLE_ACTOR.who, role: CONSOLE_ACTOR.role, via: CONSOLE_ACTOR.via, remote: CONSOLE_ACTOR.remote };
        const seq = sub === "disable" ? await c.g.devices.disable(id, who) : await c.g.devices.enable(id, who);
        return `${id} ${sub}d (record ${seq})`;
      } catch (e) {
        return `error: ${e instanceof Error ? e.message : String(e)}`;
      }
    },
  },
]);

export function registerIncidentCommands(g: Gateway, board: Board): void {
  g.shell.registerTable(INCIDENT_COMMANDS, { g, board });
}
