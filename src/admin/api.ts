/**
 * The local admin API, transport-free: the host's HTTPS server (node:https on the Node board, our
 * mbedTLS byte pump on the firmware) parses the request line and headers and calls `handle`.
 *
 *   GET /api/v1/audit?since=&until=&from=&to=&kind=&integration=&device=&limit=   → NDJSON records
 *   GET /api/v1/audit/export?from=&to=                                            → self-verifying JSONL
 *   GET /api/v1/audit/checkpoint                                                  → the newest sealed state, MACed
 *   GET /api/v1/status                                                            → JSON
 *
 * Every route but login and setup needs a credential (auth.ts): a session (cookie + CSRF header, or
 * `Authorization: Bearer pcs_…`) or the break-glass owner token (`Bearer pct_…`; the device keeps only
 * its SHA-256). Each route names the roles that may call it (the route × role table of SPEC.md).
 * Every call is an `admin` audit record (who, role, via, remote, result), except successful polls
 * of quiet routes with a session. Failed attempts are records too (never the presented token) that
 * name the caller's address in `detail.remote`; an address that presents wrong tokens too often is
 * locked out for a while (429 + Retry-After, see throttle.ts); password guessing is held back by
 * guard.ts.
 */
import type { Clock, Crypto } from "../ports.js";
import { AdminAuth, type AuthOptions } from "./auth.js";
import type { AuditEvent, AuditKind, AuditLog, AuditQuery, AuditRecord } from "../audit/types.js";
import { AuditKinds } from "../audit/types.js";
import type { CheckpointJson } from "../audit/checkpoint.js";
import { constantTimeEqual, utf8 } from "../util/bytes.js";
import { ErrorCode, PortcullisError } from "../errors.js";
import { AuthThrottle, addressOf, type ThrottleOptions } from "./throttle.js";
import { errorReply, jsonReply, matchTables, type AnyRoute, type Principal, type Route, type RouteCall, type RouteMatch, type RouteTable } from "./routes.js";

export { AUTH_THROTTLE, addressOf } from "./throttle.js";

export interface AdminRequest {
  readonly method: string;
  /** Path and query, as in the request line: `/api/v1/audit?since=3`. */
  readonly target: string;
  /** The Authorization header, if any. */
  readonly authorization?: string | undefined;
  /** Peer address ("192.0.2.7", or "192.0.2.7:50122": the port is dropped), for throttling and the audit record. */
  readonly remote: string;
  /** Other request headers the API reads (`cookie`, `content-type`, `x-csrf-token`), names in lower case. */
  readonly headers?: Readonly<Record<string, string>>;
  /** The request body as text (at most {@link MAX_ADMIN_BODY} bytes; the host answers 413 beyond it). */
  readonly body?: string;
}

/** The largest request body a host reads for the API (JSON commands are small). */
export const MAX_ADMIN_BODY = 16 * 1024;

export interface AdminResponse {
  readonly status: number;
  readonly contentType: string;
  /** Body as chunks (one per record for NDJSON), so the host can stream without joining. Empty when {@link stream} is set. */
  readonly body: readonly string[];
  /**
   * A body produced while it is sent (the audit export): the host writes `body` first, then pulls
   * `next()` only once the previous chunk has drained, and calls `close()` when it stops early
   * (client gone, error) or after the last chunk. At most one chunk is made ahead of the socket.
   */
  readonly stream?: AdminStream;
  /** Extra response headers (`Retry-After` on 429). */
  readonly headers?: Readonly<Record<string, string>>;
}

/** A pulled body: `next()` gives the next chunk, or undefined at the end; `close()` releases what it holds. */
export interface AdminStream {
  next(): Promise<string | undefined>;
  close(): void;
}

/** Chunks of at most about this many characters are what a stream hands the host (lines are never split). */
export const STREAM_CHUNK_CHARS = 2048;

/**
 * A stream over lines (each gets a "\n"), batched into chunks of about {@link STREAM_CHUNK_CHARS}:
 * the source is pulled only as the host pulls, so at most one chunk's lines are held at once.
 */
export function lineStream(lines: Iterator<string>, onClose?: () => void): AdminStream {
  let done = false;
  const finish = (): void => {
    if (done) return;
    done = true;
    lines.return?.();
    onClose?.();
  };
  return {
    next() {
      if (done) return Promise.resolve(undefined);
      let chunk = "";
      try {
        while (chunk.length < STREAM_CHUNK_CHARS) {
          const r = lines.next();
          if (r.done) {
            finish();
            break;
          }
          chunk += r.value + "\n";
        }
      } catch (e) {
        finish();
        return Promise.reject(e);
      }
      return Promise.resolve(chunk === "" ? undefined : chunk);
    },
    close: finish,
  };
}

/** The whole body of an answer as text: its chunks, then its stream pulled to the end (for tests and small answers). */
export async function readAll(res: AdminResponse): Promise<string> {
  let text = res.body.join("");
  if (!res.stream) return text;
  try {
    for (let c = await res.stream.next(); c !== undefined; c = await res.stream.next()) text += c;
  } finally {
    res.stream.close();
  }
  return text;
}

/** Default and maximum page size for `/api/v1/audit`. */
export const AUDIT_PAGE_DEFAULT = 100;
export const AUDIT_PAGE_MAX = 1000;

export interface AdminApiOptions {
  readonly crypto: Crypto;
  /** Monotonic time for throttles and sessions; wall time (`now`, `isSet`) for TOTP and the failed-login minutes. */
  readonly clock: Pick<Clock, "monotonic"> & Partial<Pick<Clock, "now" | "isSet">>;
  /** Accounts, sessions, MFA (auth.ts). Without it only the break-glass owner token is accepted. */
  readonly auth?: AuthOptions;
  /** Overrides of {@link AUTH_THROTTLE}. */
  readonly throttle?: ThrottleOptions;
  readonly audit: AuditLog;
  /** SHA-256 of the owner token. */
  readonly tokenHash: Uint8Array;
  /** Records admin actions and refusals. */
  readonly onEvent: (event: AuditEvent) => void;
  /**
   * The self-verifying export's lines (seals first), made as they are pulled; the first `next()`
   * throws `bad-option` for an empty range. Absent when the log cannot export.
   */
  readonly exportJsonl?: (from: number | undefined, to: number | undefined) => Promise<Iterator<string>>;
  /** The log's newest sealed state, MACed (seals first when needed). Absent when the log cannot vouch. */
  readonly checkpoint?: () => Promise<CheckpointJson>;
  /** Called before serving records, so pending aggregates are on flash (and in the answer). */
  readonly beforeRead?: () => Promise<void>;
  /** The status document for `/api/v1/status`. */
  readonly status: () => Record<string, unknown>;
  /** More routes, after the built-in ones; see routes.ts. */
  readonly routes?: readonly Route[];
  /** Frozen module-level route tables (owner actions, devices, incidents) with their contexts, after `routes`. */
  readonly tables?: readonly RouteTable[];
}

/** The JSON form of a record, as served: ISO time, every standard field present (null when absent). */
export function recordToJson(r: AuditRecord): Record<string, unknown> {
  const out: Record<string, unknown> = {
    seq: r.seq,
    time: new Date(r.time).toISOString(),
    timeSet: r.timeSet,
    kind: r.kind,
    decision: r.decision,
    device: r.device ?? null,
    integration: r.integration ?? null,
    topic: r.topic ?? null,
    rule: r.rule ?? null,
    reason: r.reason ?? null,
  };
  if (r.detail) out.detail = r.detail;
  return out;
}

/**
 * The lines a record is served as. A `flow-summary` record holds per-minute aggregates of allowed
 * flows; each row becomes its own line (same `seq`, a `row` index, `time` = the minute, `decision`
 * and `rule` of the row, `count`/`bytes`/`fieldsDropped`) so a reader sees every decision. The
 * self-verifying export keeps records whole.
 */
export function recordLines(r: AuditRecord, filter: { device?: string; integration?: string } = {}): Record<string, unknown>[] {
  if (!r.summary) return [recordToJson(r)];
  const out: Record<string, unknown>[] = [];
  r.summary.forEach((row, i) => {
    if (filter.device !== undefined && row.device !== filter.device) return;
    if (filter.integration !== undefined && row.integration !== filter.integration) return;
    out.push({
      seq: r.seq,
      row: i,
      time: new Date(row.minute).toISOString(),
      timeSet: r.timeSet,
      kind: r.kind,
      decision: row.decision,
      device: row.device,
      integration: row.integration,
      topic: null,
      rule: row.rule,
      reason: row.decision === "minimize" ? "minimized" : "ok",
      count: row.count,
      bytes: row.bytes,
      fieldsDropped: row.fieldsDropped,
    });
  });
  return out;
}

/** The who/role/via/remote of an admin record. */
function who(p: Principal): Record<string, string> {
  return { who: p.account, role: p.role, via: p.via, remote: p.remote };
}

function reply(status: number, message: string): AdminResponse {
  return errorReply(status, message);
}

function parseQuery(target: string): { path: string; params: Map<string, string> } {
  const q = target.indexOf("?");
  const path = q < 0 ? target : target.slice(0, q);
  const params = new Map<string, string>();
  if (q >= 0) {
    for (const part of target.slice(q + 1).split("&")) {
      if (!part) continue;
      const eq = part.indexOf("=");
      const k = decodeURIComponent(eq < 0 ? part : part.slice(0, eq));
      const v = decodeURIComponent(eq < 0 ? "" : part.slice(eq + 1).replace(/\+/g, " "));
      params.set(k, v);
    }
  }
  return { path, params };
}

/** A non-negative integer parameter, or a reason why not. */
function intParam(params: Map<string, string>, name: string): number | undefined | string {
  const v = params.get(name);
  if (v === undefined || v === "") return undefined;
  if (!/^\d{1,15}$/.test(v)) return `${name} must be a non-negative integer`;
  return Number(v);
}

/** A time parameter: ms since the epoch or an ISO 8601 date-time. */
function timeParam(params: Map<string, string>, name: string): number | undefined | string {
  const v = params.get(name);
  if (v === undefined || v === "") return undefined;
  if (/^\d{1,15}$/.test(v)) return Number(v);
  const t = Date.parse(v);
  return Number.isNaN(t) ? `${name} must be ms since the epoch or an ISO 8601 time` : t;
}

export class AdminApi {
  readonly #o: AdminApiOptions;
  readonly #throttle: AuthThrottle;

  /** @throws Error when `tokenHash` is not a SHA-256 digest or a throttle limit is not a positive integer. */
  constructor(options: AdminApiOptions) {
    if (options.tokenHash.length !== 32) throw new Error("tokenHash must be a SHA-256 digest");
    this.#o = options;
    this.#throttle = new AuthThrottle(() => options.clock.monotonic(), options.onEvent, options.throttle);
    this.auth = options.auth ? new AdminAuth(options.auth, options.crypto, options.clock, options.tokenHash, options.onEvent) : undefined;
    this.#tables = [{ table: this._builtins(), ctx: undefined }, { table: this.auth?.routes() ?? [], ctx: this.auth }, { table: options.routes ?? [], ctx: undefined }, ...(options.tables ?? [])];
  }

  /** Accounts, sessions and the login guard; undefined when the API runs with the owner token only. */
  readonly auth: AdminAuth | undefined;

  /** Writes pending failed-login rows; stops timers. */
  close(): void {
    this.auth?.close();
  }

  /** Handles one request. Never throws for bad input: it answers 4xx. */
  async handle(req: AdminRequest): Promise<AdminResponse> {
    let parsed: { path: string; params: Map<string, string> };
    try {
      parsed = parseQuery(req.target);
    } catch {
      return reply(400, "malformed query string");
    }
    const { path, params } = parsed;
    if (!path.startsWith("/api/v1/")) return reply(404, "not found");
    const remote = addressOf(req.remote);
    const m = matchTables(this.#tables, req.method, path);
    if (m.kind === "found" && m.route.public) return m.route.handle({ req, path, query: params, params: m.params, remote }, m.ctx);
    const wait = this.#throttle.check(remote);
    if (wait > 0) {
      return { ...reply(429, `too many failed attempts from this address; retry in ${wait} s`), headers: { "Retry-After": String(wait) } };
    }
    const a = this.auth ? this.auth.authenticate(req, remote) : this._tokenOnly(req.authorization, remote);
    if (!a.ok) {
      if (a.principal) {
        this.#o.onEvent({ kind: "admin", decision: "deny", reason: a.reason, detail: { ...who(a.principal), result: "denied", path } });
        return reply(a.status, a.message);
      }
      if (a.reason !== "bad-token" || !this.#throttle.failed(remote)) {
        this.#o.onEvent({ kind: "admin", decision: "deny", reason: a.reason, detail: { remote, path } });
      }
      return reply(401, a.message);
    }
    const principal = a.principal;
    if (m.kind === "none") return reply(404, "not found");
    if (m.kind === "method") return { ...reply(405, `${req.method} is not allowed here; use ${m.allowed.join(" or ")}`), headers: { Allow: m.allowed.join(", ") } };
    const route = m.route as Route<unknown>;
    if (!route.roles.includes(principal.role)) {
      this.#o.onEvent({ kind: "admin", decision: "deny", reason: "forbidden", detail: { ...who(principal), result: "forbidden", path, action: route.action ?? `${route.method} ${route.path}`, account: principal.account } });
      return reply(403, `the ${principal.role} role may not ${req.method} ${route.path}`);
    }
    if (route.recordFirst) this._record(route, principal, req.target, undefined);
    let res: AdminResponse;
    try {
      res = await route.handle({ req, path, query: params, params: m.params, principal }, m.ctx);
    } catch (e) {
      this._record(route, principal, req.target, 500);
      throw e;
    }
    const quiet = route.quiet && principal.via === "session";
    if (res.status >= 400 || (!quiet && !route.recordFirst)) this._record(route, principal, req.target, res.status);
    return res;
  }

  /** One `admin` record for a call: the action, who, and how it ended (`requested` before a recordFirst handler runs). */
  private _record(route: Route<unknown>, p: Principal, target: string, status: number | undefined): void {
    const ok = status === undefined || status < 400;
    // The target with its query (an export's range, a read's filter), bounded.
    this.#o.onEvent({ kind: "admin", decision: ok ? "allow" : "deny", reason: route.action ?? `${route.method} ${route.path}`, detail: { ...who(p), result: status === undefined ? "requested" : ok ? "ok" : "error", status: status ?? null, path: target.slice(0, 256) } });
  }

  /** The route for `method path` and the context its handler is called with (what `handle` dispatches on). */
  match(method: string, path: string): RouteMatch<AnyRoute> & { readonly ctx?: unknown } {
    return matchTables(this.#tables, method, path);
  }

  /** The built-in routes, the account routes, then the host's; the route × role table of SPEC.md lists them all. */
  get routes(): readonly AnyRoute[] {
    const all: AnyRoute[] = [];
    for (const t of this.#tables) all.push(...t.table);
    return all;
  }

  readonly #tables: readonly { readonly table: readonly AnyRoute[]; readonly ctx: unknown }[];

  private _builtins(): Route[] {
    return [
      { method: "GET", path: "/api/v1/audit", roles: ["owner", "auditor"], action: "audit-read", summary: "audit records (NDJSON)", handle: async (c: RouteCall) => {
        await this.#o.beforeRead?.();
        return this._audit(c.query as Map<string, string>);
      } },
      { method: "GET", path: "/api/v1/audit/export", roles: ["owner", "auditor"], action: "export", recordFirst: true, summary: "self-verifying export (JSONL)", handle: (c: RouteCall) => this._export(c.query as Map<string, string>) },
      { method: "GET", path: "/api/v1/audit/checkpoint", roles: ["owner", "auditor"], action: "checkpoint", recordFirst: true, summary: "newest sealed state, MACed", handle: () => this._checkpoint() },
      { method: "GET", path: "/api/v1/status", roles: ["owner", "auditor", "installer"], action: "status", quiet: true, summary: "gateway status", handle: () => jsonReply(200, this.#o.status()) },
    ];
  }

  /** Without accounts: the owner's bearer token only. */
  private _tokenOnly(header: string | undefined, remote: string): { ok: true; principal: Principal } | { ok: false; reason: "no-token" | "bad-token"; message: string; principal?: undefined; status: 401 } {
    if (this._authorized(header)) return { ok: true, principal: { account: "owner-token", role: "owner", via: "token", remote } };
    return { ok: false, status: 401, reason: header ? "bad-token" : "no-token", message: "missing or wrong bearer token" };
  }

  private _authorized(header: string | undefined): boolean {
    const m = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    if (!m) return false;
    return constantTimeEqual(this.#o.crypto.sha256(utf8(m[1]!)), this.#o.tokenHash);
  }

  private _audit(params: Map<string, string>): AdminResponse {
    const since = intParam(params, "since");
    const until = intParam(params, "until");
    const limit = intParam(params, "limit");
    const fromTime = timeParam(params, "from");
    const toTime = timeParam(params, "to");
    for (const v of [since, until, limit, fromTime, toTime]) if (typeof v === "string") return reply(400, v);
    const kind = params.get("kind");
    if (kind !== undefined && !(AuditKinds as readonly string[]).includes(kind)) {
      return reply(400, `unknown kind "${kind}"; one of ${AuditKinds.join(", ")}`);
    }
    const q: { -readonly [K in keyof AuditQuery]: AuditQuery[K] } = {
      limit: Math.min((limit as number | undefined) ?? AUDIT_PAGE_DEFAULT, AUDIT_PAGE_MAX),
    };
    if (since !== undefined) q.since = since as number;
    if (until !== undefined) q.until = until as number;
    if (fromTime !== undefined) q.fromTime = fromTime as number;
    if (toTime !== undefined) q.toTime = toTime as number;
    if (kind !== undefined) q.kind = kind as AuditKind;
    const integration = params.get("integration");
    if (integration) q.integration = integration;
    const device = params.get("device");
    if (device) q.device = device;
    const records = this.#o.audit.query(q);
    const rowFilter = { ...(q.device ? { device: q.device } : {}), ...(q.integration ? { integration: q.integration } : {}) };
    const body: string[] = [];
    for (const r of records) for (const line of recordLines(r, rowFilter)) body.push(JSON.stringify(line) + "\n");
    return { status: 200, contentType: "application/x-ndjson", body };
  }

  private async _export(params: Map<string, string>): Promise<AdminResponse> {
    if (!this.#o.exportJsonl) return reply(501, "this log cannot export");
    const from = intParam(params, "from");
    const to = intParam(params, "to");
    for (const v of [from, to]) if (typeof v === "string") return reply(400, v);
    let lines: Iterator<string>;
    let first: IteratorResult<string>;
    try {
      lines = await this.#o.exportJsonl(from as number | undefined, to as number | undefined);
      // The header line is made now, so a bad range is a 400 before anything is sent.
      first = lines.next();
    } catch (e) {
      if (e instanceof PortcullisError && e.code === ErrorCode.BadOption) return reply(400, e.message);
      throw e;
    }
    if (first.done) return { status: 200, contentType: "application/x-ndjson", body: [] };
    return { status: 200, contentType: "application/x-ndjson", body: [first.value + "\n"], stream: lineStream(lines) };
  }

  /** The checkpoint an auditor saves, to reject later exports that end before it (SPEC.md "Audit log" §5). */
  private async _checkpoint(): Promise<AdminResponse> {
    if (!this.#o.checkpoint) return reply(501, "this log cannot give checkpoints");
    try {
      return { status: 200, contentType: "application/json", body: [JSON.stringify(await this.#o.checkpoint()) + "\n"] };
    } catch (e) {
      if (e instanceof PortcullisError) return reply(503, `the audit log cannot vouch for its state now: ${e.message}`);
      throw e;
    }
  }
}
