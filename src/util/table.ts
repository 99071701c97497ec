/**
 * A plain-text table as the list commands print it: columns two spaces apart,
 * each padded to its widest cell but the last (a title or app list may be
 * long), no trailing blanks.
 */
export function formatColumns(rows: string[][]): string {
  const last = Math.max(0, ...rows.map((row) => row.length)) - 1;
  const widths = Array.from({ length: last }, (_, col) =>
    Math.max(...rows.map((row) => (row[col] ?? '').length)),
  );
  return rows
    .map((row) =>
      row
        .map((cell, col) => (col < last ? cell.padEnd(widths[col]!) : cell))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
