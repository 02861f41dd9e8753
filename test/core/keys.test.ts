/** The KeyStore contract against the in-memory store the core's tests use. */
import { keyStoreContract } from "../contract/keystore.contract.js";
import { MemoryKeys } from "../lib/memory-keys.js";

keyStoreContract("MemoryKeys", () => new MemoryKeys());
