// The counts `npm test` adds up, read from each runner's own summary lines.

/** mocha's spec reporter: "N passing", "N failing", "N pending" (pending = skipped). */
export function mochaCounts(out) {
  // The last match: the summary comes last, a test's own output may come before it.
  const n = (word) => {
    const all = [...out.matchAll(new RegExp(`^\\s*(\\d+) ${word}\\b`, "gm"))];
    return all.length ? Number(all[all.length - 1][1]) : 0;
  };
  return { passed: n("passing"), failed: n("failing"), skipped: n("pending") };
}

/** The XS harness's closing line "xs: N passed, N failed[, N skipped]"; undefined when it is missing. */
export function xsCounts(out) {
  const m = /^xs: (\d+) passed, (\d+) failed(?:, (\d+) skipped)?/m.exec(out);
  return m ? { passed: Number(m[1]), failed: Number(m[2]), skipped: Number(m[3] ?? 0) } : undefined;
}

/** The totals line CI reads. */
export function totalsLine({ passed, failed, skipped }) {
  return `${passed} passed, ${failed} failed, ${skipped} skipped`;
}
