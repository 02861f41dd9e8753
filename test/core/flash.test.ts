/** The flash contract suite, run against the in-memory NOR flash and the fault-injecting wrapper. */
import { flashContract } from "../contract/flash.contract.js";
import { ramFlash } from "../../src/flash/nor.js";
import { FaultyFlash } from "../lib/faulty-flash.js";

flashContract("NorFlash over RamStore", () => ramFlash(64 * 1024));
flashContract("FaultyFlash without faults", () => new FaultyFlash(ramFlash(64 * 1024)));
