/**
 * Assembles the {@link Board} from the Moddable ports. Platform differences (flash, key store) are
 * resolved by the manifest, which maps `portcullis/moddable/flash` and `.../keystore` per platform.
 */
import type { Board, Flash } from "../../src/ports.js";
import { ModdableClock, ModdableTimers } from "portcullis/moddable/clock";
import type { FirmwareConfig } from "portcullis/moddable/config";
import { SerialConsole } from "portcullis/moddable/console";
import { ModdableCrypto } from "portcullis/moddable/crypto";
import { openAuditFlash } from "portcullis/moddable/flash";
import { openKeyStore } from "portcullis/moddable/keystore";
import { ModdableNetwork } from "portcullis/moddable/network";
import { readProvisioning } from "portcullis/moddable/provisioning";
import { EntropyRandom } from "portcullis/moddable/random";
import { ModdableUplink } from "portcullis/moddable/uplink";
import { ModdableHomeBroker } from "portcullis/moddable/home-broker";

/** The board plus the Moddable-specific handles main needs (SNTP, connection counts, the scratch sector). */
export interface ModdableBoard extends Board {
  readonly clock: ModdableClock;
  readonly network: ModdableNetwork;
  /** One flash sector outside the core's region, for the boot self-test. */
  readonly scratch: Flash;
}

/**
 * Opens every port. Order matters only for failure messages: the console first, so later failures can be reported.
 * @throws Error when a port cannot be opened (missing partition, unreadable data directory, bad config).
 */
export function createBoard(config: FirmwareConfig): ModdableBoard {
  const console = new SerialConsole(config.console);
  const random = new EntropyRandom();
  const crypto = new ModdableCrypto(random);
  const keys = openKeyStore();
  const trustAnchor = readProvisioning(keys).uplinkCa;
  const { flash, scratch } = openAuditFlash();
  return {
    console,
    clock: new ModdableClock(),
    timers: new ModdableTimers(),
    random,
    crypto,
    flash,
    scratch,
    keys,
    network: new ModdableNetwork(),
    uplink: new ModdableUplink({
      dnsServers: config.dns,
      sha256: (data) => crypto.sha256(data),
      ...(trustAnchor !== undefined ? { trustAnchor: trustAnchor.slice().buffer as ArrayBuffer } : {}),
    }),
    // Bridge mode (gateway.json homeBroker): type-checked, not yet run on a device or lin.
    homeBroker: new ModdableHomeBroker({
      dnsServers: config.dns,
      sha256: (data) => crypto.sha256(data),
      ...(trustAnchor !== undefined ? { trustAnchor: trustAnchor.slice().buffer as ArrayBuffer } : {}),
    }),
  };
}
