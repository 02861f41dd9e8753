/** The closed set of error codes the core reports (littlefs style: one table, no TS enum). */

export const ErrorCode = Object.freeze({
  /** A flash rule was broken: programming a bit from 0 to 1, misalignment, or out of range. */
  FlashRule: "flash-rule",
  /** The (simulated) power failed during a flash operation. */
  PowerCut: "power-cut",
  /** A bad option or argument from the caller (a programmer error). */
  BadOption: "bad-option",
  /** A configured limit was reached; the core rejects rather than grows. */
  Limit: "limit",
  /** Stored data failed its integrity check. */
  Corrupt: "corrupt",
  /** Input from outside (a packet, a file) is malformed. */
  Malformed: "malformed",
} as const);

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** An error carrying one of the {@link ErrorCode}s. */
export class PortcullisError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.code = code;
    this.name = "PortcullisError";
  }
}
