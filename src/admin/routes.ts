/**
 * The admin API's routes: each a method, a path pattern, the roles that may call it and a handler.
 * AdminApi authenticates the caller, finds the route, checks the role and calls the handler with the
 * caller (`Principal`), so a handler never sees an unauthenticated or unauthorized request.
 *
 * Path patterns are literal segments and `{name}` segments (`/api/v1/incidents/{id}/notes`); a `{name}`
 * matches one non-empty segment, percent-decoded.
 */
import type { AdminRequest, AdminResponse } from "./api.js";

export type Role = "owner" | "auditor" | "installer";
export const ROLES: readonly Role[] = Object.freeze(["owner", "auditor", "installer"] as Role[]);

/** Who is calling, as authenticated. */
export interface Principal {
  /** Account name; "owner-token" for the break-glass bearer token, "console" on the serial console. */
  readonly account: string;
  readonly role: Role;
  readonly via: "token" | "session" | "console";
  /** Caller's address without port ("console" on the serial console). */
  readonly remote: string;
}

export type Method = "GET" | "POST" | "PUT" | "DELETE";

export interface RouteCall {
  readonly req: AdminRequest;
  readonly path: string;
  readonly query: ReadonlyMap<string, string>;
  /** The `{name}` segments of the pattern. */
  readonly params: Readonly<Record<string, string>>;
  readonly principal: Principal;
}

/**
 * A route. `C` is the context its handler is called with: route tables are written once at module
 * level and frozen (src/util/frozen.ts: in flash on the device, no RAM per boot), and the host binds
 * each table to its context when it builds the AdminApi (`RouteTable`).
 */
export interface Route<C = undefined> {
  readonly method: Method;
  readonly path: string;
  readonly roles: readonly Role[];
  /** One line for the route × role table (SPEC.md). */
  readonly summary: string;
  handle(call: RouteCall, ctx: C): AdminResponse | Promise<AdminResponse>;
  /**
   * The audit record's `reason` for a call (default `"<METHOD> <path pattern>"`). AdminApi writes one
   * `admin` record per call, allowed or refused, with who, role, via, remote and result.
   */
  readonly action?: string;
  /**
   * No record for a successful call with a session (polled reads like `/api/v1/status`). Calls with the
   * break-glass token and refusals are recorded regardless.
   */
  readonly quiet?: boolean;
  /**
   * Record the call before handling it (result "requested"), so what the handler serves — an export,
   * a checkpoint — already holds the record of its own request; a failure adds a second record.
   */
  readonly recordFirst?: boolean;
  readonly public?: undefined;
}

/** What a route open to anyone (`/api/v1/login`, `/api/v1/setup`) is called with: no principal. */
export interface PublicCall {
  readonly req: AdminRequest;
  readonly path: string;
  readonly query: ReadonlyMap<string, string>;
  readonly params: Readonly<Record<string, string>>;
  /** Caller's address without port. */
  readonly remote: string;
}

/** A route that needs no credential: it authenticates the caller itself (login, first-boot setup). */
export interface PublicRoute<C = any> {
  readonly method: Method;
  readonly path: string;
  readonly roles: readonly Role[];
  readonly summary: string;
  readonly public: true;
  handle(call: PublicCall, ctx: C): AdminResponse | Promise<AdminResponse>;
}

export type AnyRoute = Route<any> | PublicRoute;

/** A frozen route table and the context its handlers get. */
export interface RouteTable<C = any> {
  readonly table: readonly Route<C>[];
  readonly ctx: C;
}

/** A JSON answer. */
export function jsonReply(status: number, value: unknown, headers?: Readonly<Record<string, string>>): AdminResponse {
  return { status, contentType: "application/json", body: [JSON.stringify(value) + "\n"], ...(headers ? { headers } : {}) };
}

/** A JSON error: `{"error": message, "field": field}`; `field` names the bad input when there is one. */
export function errorReply(status: number, message: string, field?: string): AdminResponse {
  return jsonReply(status, field === undefined ? { error: message } : { error: message, field });
}

/** The body as a JSON object, or the 400/415 answer that says why not. An absent body is `{}`. */
export function jsonBody(req: AdminRequest): { ok: true; value: Record<string, unknown> } | { ok: false; response: AdminResponse } {
  const text = req.body;
  if (text === undefined || text === "") return { ok: true, value: {} };
  const type = req.headers?.["content-type"];
  if (type !== undefined && !/^application\/json\s*(;|$)/i.test(type)) {
    return { ok: false, response: errorReply(415, "the body must be application/json") };
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return { ok: false, response: errorReply(400, "the body is not JSON", "body") };
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) return { ok: false, response: errorReply(400, "the body must be a JSON object", "body") };
  return { ok: true, value: v as Record<string, unknown> };
}

function segments(path: string): string[] {
  return path.split("/").slice(1);
}

export type RouteMatch<R extends { method: Method; path: string } = Route> =
  | { readonly kind: "found"; readonly route: R; readonly params: Readonly<Record<string, string>> }
  | { readonly kind: "method"; readonly allowed: readonly Method[] }
  | { readonly kind: "none" };

/** Finds the route for `method path`; "method" when the path exists with other methods only. */
export function matchRoute<R extends { readonly method: Method; readonly path: string }>(routes: readonly R[], method: string, path: string): RouteMatch<R> {
  const got = segments(path);
  const allowed: Method[] = [];
  for (const route of routes) {
    const want = segments(route.path);
    if (want.length !== got.length) continue;
    const params: Record<string, string> = {};
    let ok = true;
    for (let i = 0; i < want.length && ok; i++) {
      const w = want[i]!;
      const g = got[i]!;
      if (w.startsWith("{") && w.endsWith("}")) {
        if (g === "") ok = false;
        else {
          try {
            Object.defineProperty(params, w.slice(1, -1), { value: decodeURIComponent(g), enumerable: true });
          } catch {
            ok = false;
          }
        }
      } else if (w !== g) ok = false;
    }
    if (!ok) continue;
    if (route.method === method) return { kind: "found", route, params };
    if (!allowed.includes(route.method)) allowed.push(route.method);
  }
  return allowed.length ? { kind: "method", allowed } : { kind: "none" };
}

/**
 * {@link matchRoute} over several tables in order: the first table with the route wins and its context
 * comes with it; "method" collects the methods the path has across all tables.
 */
export function matchTables(tables: readonly { readonly table: readonly AnyRoute[]; readonly ctx: unknown }[], method: string, path: string): RouteMatch<AnyRoute> & { readonly ctx?: unknown } {
  let allowed: Method[] | undefined;
  for (const t of tables) {
    const m = matchRoute(t.table, method, path);
    if (m.kind === "found") return { kind: "found", route: m.route, params: m.params, ctx: t.ctx };
    if (m.kind === "method") for (const a of m.allowed) if (!(allowed ??= []).includes(a)) allowed.push(a);
  }
  return allowed ? { kind: "method", allowed } : { kind: "none" };
}
