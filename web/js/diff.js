// A line diff of two texts (longest common subsequence), for showing two schema versions
// side by side. Pure: text in, rows out; the page draws the rows.

/**
 * diffLines(a, b) → [{left, right, kind}] where kind is "same", "removed" (only in a),
 * "added" (only in b); left/right are the line texts or null.
 */
export function diffLines(a, b) {
  const x = a.split("\n");
  const y = b.split("\n");
  const n = x.length;
  const m = y.length;
  // lengths[i][j]: the LCS length of x[i:] and y[j:]
  const lengths = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i -= 1) {
    for (let j = m - 1; j >= 0; j -= 1) {
      lengths[i][j] = x[i] === y[j] ? lengths[i + 1][j + 1] + 1 : Math.max(lengths[i + 1][j], lengths[i][j + 1]);
    }
  }
  const rows = [];
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (x[i] === y[j]) {
      rows.push({ left: x[i], right: y[j], kind: "same" });
      i += 1;
      j += 1;
    } else if (lengths[i + 1][j] >= lengths[i][j + 1]) {
      rows.push({ left: x[i], right: null, kind: "removed" });
      i += 1;
    } else {
      rows.push({ left: null, right: y[j], kind: "added" });
      j += 1;
    }
  }
  for (; i < n; i += 1) rows.push({ left: x[i], right: null, kind: "removed" });
  for (; j < m; j += 1) rows.push({ left: null, right: y[j], kind: "added" });
  return rows;
}
