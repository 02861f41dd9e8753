/**
 * Device credentials over HTTPS: `POST /api/v1/devices/{id}/disable|enable` (owner, installer), the
 * console's `device disable|enable` (src/incident/commands.ts) on the same DeviceRegistry. A disabled
 * device gets CONNACK 5 from then on and its session is closed; each change is an `admin` record
 * naming who acted.
 */
import type { DeviceRegistry } from "../gateway/devices.js";
import type { AdminResponse } from "./api.js";
import { frozenTable } from "../util/frozen.js";
import { errorReply, jsonReply, type Route, type RouteCall } from "./routes.js";

async function change(c: RouteCall, devices: DeviceRegistry, enable: boolean): Promise<AdminResponse> {
  const id = c.params["id"]!;
  const p = c.principal;
  const who = { who: p.account, role: p.role, via: p.via, remote: p.remote };
  let seq: number;
  try {
    seq = enable ? await devices.enable(id, who) : await devices.disable(id, who);
  } catch (e) {
    return errorReply(404, e instanceof Error ? e.message : String(e), "id");
  }
  return jsonReply(200, { id, disabled: !enable, record: seq });
}

/** Built once when the module loads and frozen; the context is the gateway's DeviceRegistry. */
export const DEVICE_ROUTES: readonly Route<DeviceRegistry>[] = frozenTable<Route<DeviceRegistry>>([
  { method: "POST", path: "/api/v1/devices/{id}/disable", roles: ["owner", "installer"], summary: "disable a device's credentials (CONNACK 5, session closed)", handle: (c, d) => change(c, d, false) },
  { method: "POST", path: "/api/v1/devices/{id}/enable", roles: ["owner", "installer"], summary: "enable a device's credentials again", handle: (c, d) => change(c, d, true) },
]);
