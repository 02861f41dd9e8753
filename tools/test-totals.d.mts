// Types for tools/test-totals.mjs (plain JS so `npm test` runs without a compiler).
export interface Counts {
  passed: number;
  failed: number;
  skipped: number;
}
export function mochaCounts(out: string): Counts;
export function xsCounts(out: string): Counts | undefined;
export function totalsLine(c: Counts): string;
