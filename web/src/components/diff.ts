// A line diff (longest common subsequence), enough for rule-set documents of a few hundred lines.

export interface DiffLine {
  op: "same" | "added" | "removed";
  text: string;
  oldNo: number | null; // line number in the old text
  newNo: number | null; // line number in the new text
}

const MAX_CELLS = 4_000_000; // beyond, fall back to "everything removed, everything added"

export function lineDiff(oldText: string, newText: string): DiffLine[] {
  const a = oldText.replace(/\r\n/g, "\n").replace(/\n$/, "").split("\n");
  const b = newText.replace(/\r\n/g, "\n").replace(/\n$/, "").split("\n");
  // Common head and tail first: most versions differ in a few lines.
  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) head++;
  let tail = 0;
  while (tail < a.length - head && tail < b.length - head && a[a.length - 1 - tail] === b[b.length - 1 - tail]) tail++;
  const midA = a.slice(head, a.length - tail);
  const midB = b.slice(head, b.length - tail);

  const out: DiffLine[] = [];
  for (let i = 0; i < head; i++) out.push({ op: "same", text: a[i] ?? "", oldNo: i + 1, newNo: i + 1 });

  const n = midA.length;
  const m = midB.length;
  if (n * m > MAX_CELLS) {
    midA.forEach((text, i) => out.push({ op: "removed", text, oldNo: head + i + 1, newNo: null }));
    midB.forEach((text, j) => out.push({ op: "added", text, oldNo: null, newNo: head + j + 1 }));
  } else {
    // lcs[i][j]: the longest common subsequence of midA[i:] and midB[j:].
    const lcs: Uint32Array[] = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
    for (let i = n - 1; i >= 0; i--) {
      const row = lcs[i]!;
      const below = lcs[i + 1]!;
      for (let j = m - 1; j >= 0; j--) {
        row[j] = midA[i] === midB[j] ? below[j + 1]! + 1 : Math.max(below[j]!, row[j + 1]!);
      }
    }
    let i = 0;
    let j = 0;
    while (i < n || j < m) {
      if (i < n && j < m && midA[i] === midB[j]) {
        out.push({ op: "same", text: midA[i]!, oldNo: head + i + 1, newNo: head + j + 1 });
        i++;
        j++;
      } else if (i < n && (j >= m || lcs[i + 1]![j]! >= lcs[i]![j + 1]!)) {
        out.push({ op: "removed", text: midA[i]!, oldNo: head + i + 1, newNo: null });
        i++;
      } else {
        out.push({ op: "added", text: midB[j]!, oldNo: null, newNo: head + j + 1 });
        j++;
      }
    }
  }
  for (let k = 0; k < tail; k++) {
    const oldNo = a.length - tail + k;
    const newNo = b.length - tail + k;
    out.push({ op: "same", text: a[oldNo] ?? "", oldNo: oldNo + 1, newNo: newNo + 1 });
  }
  return out;
}

/** Only the changed lines and ``context`` lines around each; the skipped runs as one marker each. */
export function withContext(lines: DiffLine[], context = 3): (DiffLine | { op: "skip"; count: number })[] {
  const keep = new Array<boolean>(lines.length).fill(false);
  lines.forEach((line, index) => {
    if (line.op === "same") return;
    for (let k = Math.max(0, index - context); k <= Math.min(lines.length - 1, index + context); k++) keep[k] = true;
  });
  const out: (DiffLine | { op: "skip"; count: number })[] = [];
  let skipped = 0;
  lines.forEach((line, index) => {
    if (keep[index]) {
      if (skipped) out.push({ op: "skip", count: skipped });
      skipped = 0;
      out.push(line);
    } else skipped++;
  });
  if (skipped) out.push({ op: "skip", count: skipped });
  return out;
}
