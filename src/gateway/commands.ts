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

export function registerCommands(g: Gateway, board: Board): void {
  const shell = g.shell;
  const engine = g.policy.engine;
  const actions = g.actions;
  const known = (id: string | undefined): string | undefined =>
    id === undefined ? "give an integration id (see `integrations`)" : engine.integrations().some((i) => i.id === id) ? undefined : `unknown integration "${id}" (see \`integrations\`)`;

  shell.register({
    name: "status",
    summary: "uptime, devices, integrations, audit records, flash use, certificate fingerprint",
    run: () => {
      const s = g.status() as {
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
      const gauge = (label: string, g: GaugeStatus, fmt: (n: number) => string = String): string =>
        `  ${label.padEnd(14)}${`${fmt(g.used)}/${fmt(g.limit)}`.padEnd(22)}${g.lastHit === null ? "never reached" : `reached ${g.hits}×, last ${new Date(g.lastHit).toISOString()}`}`;
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
  });

  shell.register({
    name: "devices",
    summary: "connected devices",
    run: () => {
      const now = board.clock.monotonic();
      const c = g.broker.clients();
      return c.length === 0 ? "no devices connected" : table([["client id", "remote", "connected for"], ...c.map((d) => [d.clientId, d.remote, `${Math.floor((now - d.since) / 1000)} s`])]);
    },
  });

  shell.register({
    name: "integrations",
    summary: "each integration: state, version, queue and uplink",
    run: () => {
      const out = g.outbound.summary();
      return table([
        ["integration", "state", "version", "uplink", "queued", "sent", "dropped"],
        ...engine.integrations().map((i) => {
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
  });

  shell.register({ name: "datamap", summary: "device → data classes → integrations → destinations, with counts", run: () => engine.renderDataMap() });

  shell.register({
    name: "audit",
    summary: "audit [n] [kind]: the last n records (default 10)",
    run: (args) => {
      const n = args[0] === undefined ? 10 : Number(args[0]);
      if (!Number.isInteger(n) || n < 1 || n > 100) return "usage: audit [n 1-100] [kind]";
      const kind = args[1];
      if (kind !== undefined && !(AuditKinds as readonly string[]).includes(kind)) return `unknown kind "${kind}"; one of ${AuditKinds.join(", ")}`;
      const next = g.audit.log.nextSeq;
      const since = kind === undefined ? Math.max(1, next - n) : 1;
      const recs = g.audit.log.query({ since, limit: 1000, ...(kind ? { kind: kind as AuditKind } : {}) }).slice(-n);
      return recs.flatMap((r) => recordLines(r).map((l) => JSON.stringify(l))).join("\n") || "no records";
    },
  });

  shell.register({
    name: "consent",
    summary: `consent <integration> <class> <opt-in|opt-out|withdrawn>: record the household's choice`,
    run: async (args) => {
      const [id, cls, state] = args;
      const bad = known(id);
      if (bad) return `usage: consent <integration> <class> <opt-in|opt-out|withdrawn>: ${bad}`;
      if (!cls || !(DataClasses as readonly string[]).includes(cls)) return `unknown data class "${cls ?? ""}"; one of ${DataClasses.join(", ")}`;
      if (state !== "opt-in" && state !== "opt-out" && state !== "withdrawn") return "state must be opt-in, opt-out or withdrawn";
      const r = await actions.setConsent(CONSOLE, id, cls, state);
      if (!r.ok) return r.error.message;
      return `consent for ${id} / ${cls}: ${state}${state === "withdrawn" ? " (queue purged, pseudonym key destroyed)" : ""}`;
    },
  });

  shell.register({
    name: "approve",
    summary: "approve <integration>: enforce its pending contract version",
    run: (args) => known(args[0]) ?? (actions.approve(CONSOLE, args[0]).ok ? `approved: ${args[0]} now enforces its new version` : `nothing pending for ${args[0]}`),
  });
  shell.register({
    name: "reject",
    summary: "reject <integration>: refuse its pending contract version",
    run: (args) => known(args[0]) ?? (actions.reject(CONSOLE, args[0]).ok ? `rejected the pending version of ${args[0]}` : `nothing pending for ${args[0]}`),
  });
  shell.register({
    name: "remove",
    summary: "remove <integration>: end it: flows, consent, approval, pseudonym key and queue are gone",
    run: (args) => known(args[0]) ?? (actions.remove(CONSOLE, args[0]).ok ? `removed ${args[0]}; its queue is purged` : `could not remove ${args[0]}`),
  });
  shell.register({
    name: "quarantine",
    summary: "quarantine <integration> [reason]: contain: deny all its flows, freeze its queue",
    run: (args) => {
      const bad = known(args[0]);
      if (bad) return bad;
      const r = actions.quarantine(CONSOLE, args[0], args.slice(1).join(" ").slice(0, 120));
      return r.ok ? `${args[0]} quarantined: every flow denied, queue frozen` : r.error.message;
    },
  });
  shell.register({
    name: "release",
    summary: "release <integration>: lift a quarantine",
    run: (args) => {
      const bad = known(args[0]);
      if (bad) return bad;
      const r = actions.release(CONSOLE, args[0]);
      return r.ok ? `${args[0]} released` : r.error.message;
    },
  });
  shell.register({
    name: "unlock",
    summary: "unlock <account|address>: lift an admin login lockout or back-off",
    run: (args) => {
      const auth = g.admin.auth;
      if (!auth) return "this gateway has no admin accounts";
      if (args[0] === undefined) return "give an account name or an address";
      return auth.unlock(args[0], WHO) ? `${args[0]} unlocked` : `no account or tracked address "${args[0]}"`;
    },
  });
  shell.register({
    name: "rotate",
    summary: "rotate <integration>: new pseudonym key (new pseudonyms from now on)",
    run: (args) => {
      const bad = known(args[0]);
      if (bad) return bad;
      const r = actions.rotate(CONSOLE, args[0]);
      return r.ok ? `pseudonym key of ${args[0]} rotated` : r.error.message;
    },
  });
  shell.register({
    name: "hold",
    summary: "hold <reason>: legal hold on the audit log (nothing is purged)",
    run: async (args) => {
      if (args.length === 0) return "usage: hold <reason>";
      const r = await actions.hold(CONSOLE, args.join(" ").slice(0, 120));
      return r.ok ? `legal hold placed (record ${r.value.seq})` : r.error.message;
    },
  });
  shell.register({
    name: "unhold",
    summary: "lift the legal hold",
    run: async () => {
      const r = await actions.unhold(CONSOLE);
      return r.ok ? `legal hold lifted (record ${r.value.seq})` : r.error.message;
    },
  });
  shell.register({
    name: "seal",
    summary: "seal the current audit epoch now",
    run: () => {
      const r = actions.seal(CONSOLE);
      return r.ok ? `sealed (record ${r.value.seq})` : r.error.message;
    },
  });
}
