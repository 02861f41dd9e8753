/**
 * The console commands of the gateway: diagnostics (`status`, `devices`, `integrations`, `datamap`,
 * `audit`) and the owner's actions (`consent`, `approve`, `reject`, `remove`, `quarantine`, `release`, `hold`,
 * `unhold`, `seal`, `rotate`, `unlock`). The actions are src/gateway/actions.ts's (the admin API calls the same
 * ones); each writes an audit record naming who acted: "console".
 */
import type { Board } from "../ports.js";
import type { Gateway } from "../gateway.js";
import { recordLines } from "../admin/api.js";
import { AuditKinds, type AuditKind } from "../audit/types.js";
import { DataClasses } from "../policy/contract.js";
import type { GaugeName, GaugeStatus } from "../profiles.js";
import type { TableCommand } from "../console/shell.js";
import { frozenTable } from "../util/frozen.js";
import { meter, meterLine } from "../util/meter.js";

const WHO = "console";
import { CONSOLE } from "./actions.js";

function table(rows: readonly (readonly string[])[]): string {
  if (rows.length === 0) return "";
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  ")).join("\n");
}

function bytes(n: number): string {
  return n >= 1024 * 1024 ? `${(n / 1048576).toFixed(2)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`;
}

/** What the commands act on; one object per gateway (the table itself is built once, at preload). */
interface Context {
  readonly g: Gateway;
  readonly board: Board;
}

/** "give an integration id" or "unknown integration" for a bad id, undefined for a known one. */
function known(g: Gateway, id: string | undefined): string | undefined {
  return id === undefined ? "give an integration id (see `integrations`)" : g.policy.engine.integrations().some((i) => i.id === id) ? undefined : `unknown integration "${id}" (see \`integrations\`)`;
}

/**
 * The commands, a module-level frozen table: on the device it is built at preload time and lives in
 * flash, so a boot creates one context object instead of ~15 command objects and their closures
 * (DESIGN.md "Inside startGateway").
 */
const COMMANDS: readonly TableCommand<Context>[] = frozenTable<TableCommand<Context>>([
  {
    name: "status",
    summary: "uptime, devices, integrations, audit records, flash use, certificate fingerprint",
    run: (_args, c) => {
      const s = c.g.status() as {
        name: string; uptimeSeconds: number; timeSet: boolean; devicesConnected: number; devicesConfigured: number;
        integrations: { id: string; state: string; version: string | null; blocked?: string }[];
        audit: { records: number; nextSeq: number; flashUsedBytes: number; flashTotalBytes: number; failClosed: boolean; hold: string | undefined };
        certificateFingerprint: string;
        profile: string;
        limits: Record<GaugeName, GaugeStatus> & { devicesPaused: boolean };
        incidents: { id: string; state: string; deadlines: { party: string; leftMs: number }[] }[];
        homeBroker?: { url: string; state: string; failures: number; lastError?: string; retryInMs?: number; received: number; unmatched: number };
      };
      const h = s.homeBroker;
      const a = s.audit;
      const l = s.limits;
      const gauge = (label: string, gs: GaugeStatus, fmt: (n: number) => string = String): string =>
        `  ${label.padEnd(14)}${`${fmt(gs.used)}/${fmt(gs.limit)}`.padEnd(22)}${gs.lastHit === null ? "never reached" : `reached ${gs.hits}×, last ${new Date(gs.lastHit).toISOString()}`}`;
      return [
        `name          ${s.name}`,
        `uptime        ${s.uptimeSeconds} s${s.timeSet ? "" : " (clock not set: record times are not evidence)"}`,
        `devices       ${s.devicesConnected} connected of ${s.devicesConfigured} configured`,
        `integrations  ${s.integrations.map((i) => `${i.id} (${i.blocked !== undefined ? `blocked: ${i.blocked}` : i.state}${i.version ? ` v${i.version}` : ""})`).join(", ") || "none"}`,
        `limits        ${s.profile} profile${l.devicesPaused ? ", DEVICES PAUSED: pipeline full" : ""}`,
        gauge("sessions", l.sessions),
        gauge("pending", l.pending),
        gauge("integrations", l.integrations),
        gauge("pipeline", l.pipelineBytes, bytes),
        gauge("queue", l.queueBytes, bytes),
        `audit         ${a.records} records, next seq ${a.nextSeq}${a.hold ? `, LEGAL HOLD: ${a.hold}` : ""}${a.failClosed ? ", FAIL-CLOSED: outbound stopped" : ""}`,
        `flash         ${bytes(a.flashUsedBytes)} of ${bytes(a.flashTotalBytes)} used (${((100 * a.flashUsedBytes) / Math.max(1, a.flashTotalBytes)).toFixed(1)}%)`,
        `certificate   SHA-256 ${s.certificateFingerprint}`,
        ...(h ? [`home broker   ${h.url} ${h.state.toUpperCase()}${h.failures ? `, ${h.failures} failed attempts (${h.lastError ?? "?"})` : ""}${h.retryInMs !== undefined ? `, retry in ${Math.ceil(h.retryInMs / 1000)} s` : ""}; ${h.received} received, ${h.unmatched} unmatched (denied)`] : []),
        ...s.incidents.map((i) => `incident      ${i.id} ${i.state}: ${i.deadlines.map((d) => `${d.party} ${d.leftMs < 0 ? "OVERDUE" : `${Math.floor(d.leftMs / 3_600_000)} h ${Math.floor((d.leftMs % 3_600_000) / 60_000)} min left`}`).join(", ") || "every party notified"}`),
      ].join("\n");
    },
  },

  {
    name: "devices",
    summary: "connected devices",
    run: (_args, c) => {
      const now = c.board.clock.monotonic();
      const clients = c.g.broker.clients();
      return clients.length === 0 ? "no devices connected" : table([["client id", "remote", "connected for"], ...clients.map((d) => [d.clientId, d.remote, `${Math.floor((now - d.since) / 1000)} s`])]);
    },
  },

  {
    name: "integrations",
    summary: "each integration: state, version, queue and uplink",
    run: (_args, c) => {
      const out = c.g.outbound.summary();
      return table([
        ["integration", "state", "version", "uplink", "queued", "sent", "dropped"],
        ...c.g.policy.engine.integrations().map((i) => {
          const routes = Object.entries(out).filter(([k]) => k.startsWith(i.id + "/")).map(([, v]) => v);
          const sum = (f: (s: (typeof routes)[number]) => number): string => String(routes.reduce((n, s) => n + f(s), 0));
          return [
            i.id,
            (i.blocked !== undefined ? `blocked: ${i.blocked}` : i.state) + (i.quarantine ? ` (${i.quarantine})` : "") + (i.pending ? ` → v${i.pending.version} pending` : "") + (i.broken.length ? " (contract file broken; approved version in force)" : ""),
            i.version ?? "-",
            routes.map((r) => r.state).join(",") || "-",
            sum((s) => s.queued),
            sum((s) => s.sent),
            sum((s) => Object.values(s.dropped).reduce((a, b) => a + b, 0)),
          ];
        }),
      ]);
    },
  },

  { name: "datamap", summary: "device → data classes → integrations → destinations, with counts", run: (_args, c) => c.g.policy.engine.renderDataMap() },

  {
    name: "audit",
    summary: "audit [n] [kind]: the last n records (default 10)",
    run: (args, c) => {
      const n = args[0] === undefined ? 10 : Number(args[0]);
      if (!Number.isInteger(n) || n < 1 || n > 100) return "usage: audit [n 1-100] [kind]";
      const kind = args[1];
      if (kind !== undefined && !(AuditKinds as readonly string[]).includes(kind)) return `unknown kind "${kind}"; one of ${AuditKinds.join(", ")}`;
      const next = c.g.audit.log.nextSeq;
      const since = kind === undefined ? Math.max(1, next - n) : 1;
      const recs = c.g.audit.log.query({ since, limit: 1000, ...(kind ? { kind: kind as AuditKind } : {}) }).slice(-n);
      return recs.flatMap((r) => recordLines(r).map((l) => JSON.stringify(l))).join("\n") || "no records";
    },
  },

  {
    name: "consent",
    summary: `consent <integration> <class> <opt-in|opt-out|withdrawn>: record the household's choice`,
    run: async (args, c) => {
      const [id, cls, state] = args;
      const bad = known(c.g, id);
      if (bad) return `usage: consent <integration> <class> <opt-in|opt-out|withdrawn>: ${bad}`;
      if (!cls || !(DataClasses as readonly string[]).includes(cls)) return `unknown data class "${cls ?? ""}"; one of ${DataClasses.join(", ")}`;
      if (state !== "opt-in" && state !== "opt-out" && state !== "withdrawn") return "state must be opt-in, opt-out or withdrawn";
      const r = await c.g.actions.setConsent(CONSOLE, id, cls, state);
      if (!r.ok) return r.error.message;
      return `consent for ${id} / ${cls}: ${state}${state === "withdrawn" ? " (queue purged, pseudonym key destroyed)" : ""}`;
    },
  },

  {
    name: "approve",
    summary: "approve <integration>: enforce its pending contract version",
    run: (args, c) => known(c.g, args[0]) ?? (c.g.actions.approve(CONSOLE, args[0]).ok ? `approved: ${args[0]} now enforces its new version` : `nothing pending for ${args[0]}`),
  },
  {
    name: "reject",
    summary: "reject <integration>: refuse its pending contract version",
    run: (args, c) => known(c.g, args[0]) ?? (c.g.actions.reject(CONSOLE, args[0]).ok ? `rejected the pending version of ${args[0]}` : `nothing pending for ${args[0]}`),
  },
  {
    name: "remove",
    summary: "remove <integration>: end it: flows, consent, approval, pseudonym key and queue are gone",
    run: (args, c) => known(c.g, args[0]) ?? (c.g.actions.remove(CONSOLE, args[0]).ok ? `removed ${args[0]}; its queue is purged` : `could not remove ${args[0]}`),
  },
  {
    name: "quarantine",
    summary: "quarantine <integration> [reason]: contain: deny all its flows, freeze its queue",
    run: (args, c) => {
      const bad = known(c.g, args[0]);
      if (bad) return bad;
      const r = c.g.actions.quarantine(CONSOLE, args[0], args.slice(1).join(" ").slice(0, 120));
      return r.ok ? `${args[0]} quarantined: every flow denied, queue frozen` : r.error.message;
    },
  },
  {
    name: "release",
    summary: "release <integration>: lift a quarantine",
    run: (args, c) => {
      const bad = known(c.g, args[0]);
      if (bad) return bad;
      const r = c.g.actions.release(CONSOLE, args[0]);
      return r.ok ? `${args[0]} released` : r.error.message;
    },
  },
  {
    name: "unlock",
    summary: "unlock <account|address>: lift an admin login lockout or back-off",
    run: (args, c) => {
      const auth = c.g.admin.auth;
      if (!auth) return "this gateway has no admin accounts";
      if (args[0] === undefined) return "give an account name or an address";
      return auth.unlock(args[0], WHO) ? `${args[0]} unlocked` : `no account or tracked address "${args[0]}"`;
    },
  },
  {
    name: "rotate",
    summary: "rotate <integration>: new pseudonym key (new pseudonyms from now on)",
    run: (args, c) => {
      const bad = known(c.g, args[0]);
      if (bad) return bad;
      const r = c.g.actions.rotate(CONSOLE, args[0]);
      return r.ok ? `pseudonym key of ${args[0]} rotated` : r.error.message;
    },
  },
  {
    name: "hold",
    summary: "hold <reason>: legal hold on the audit log (nothing is purged)",
    run: async (args, c) => {
      if (args.length === 0) return "usage: hold <reason>";
      const r = await c.g.actions.hold(CONSOLE, args.join(" ").slice(0, 120));
      return r.ok ? `legal hold placed (record ${r.value.seq})` : r.error.message;
    },
  },
  {
    name: "unhold",
    summary: "lift the legal hold",
    run: async (_args, c) => {
      const r = await c.g.actions.unhold(CONSOLE);
      return r.ok ? `legal hold lifted (record ${r.value.seq})` : r.error.message;
    },
  },
  {
    name: "profile",
    summary: "CPU per message by stage: `profile on`, `profile` (report), `profile reset`, `profile off`",
    run: (args, c) => {
      const cpu = c.board.clock.cpuMicros;
      const what = args[0];
      if (what === "on") {
        if (cpu === undefined) return "this board has no CPU clock (Clock.cpuMicros): nothing to measure";
        meter.use(() => cpu.call(c.board.clock));
        return "profile: on (figures reset)";
      }
      if (what === "off") {
        meter.use(undefined);
        return "profile: off";
      }
      if (!meter.on) return "profile: off (`profile on` starts it)";
      if (what === "reset") {
        meter.reset();
        return "profile: reset";
      }
      if (what !== undefined) return `unknown profile argument "${what}": give on, off, reset or nothing`;
      return meterLine(meter.report());
    },
  },
  {
    name: "seal",
    summary: "seal the current audit epoch now",
    run: (_args, c) => {
      const r = c.g.actions.seal(CONSOLE);
      return r.ok ? `sealed (record ${r.value.seq})` : r.error.message;
    },
  },
]);

export function registerCommands(g: Gateway, board: Board): void {
  g.shell.registerTable(COMMANDS, { g, board });
}
