// A long list drawn as a window: only the rows near the viewport are in the
// DOM, with spacers above and below holding the rest's height, so 1,000 rows
// cost what 30 do. Plain arithmetic here; the pages own the scrolling.

export type Window = { start: number; end: number; before: number; after: number };

// Rows [start, end) of `count`, each `row` px high, for a viewport of `height`
// px scrolled `scrollTop` px past the list's first row, `overscan` rows extra
// on each side; `before`/`after` are the spacers' heights.
export function windowOf(count: number, scrollTop: number, height: number, row: number, overscan = 10): Window {
  if (count === 0 || row <= 0) return { start: 0, end: count, before: 0, after: 0 };
  const first = Math.floor(Math.max(0, scrollTop) / row);
  const start = Math.max(0, Math.min(count, first - overscan));
  const end = Math.min(count, first + Math.ceil(Math.max(0, height) / row) + overscan);
  return { start, end: Math.max(start, end), before: start * row, after: (count - Math.max(start, end)) * row };
}

// Where a key moves the focused row (`null`: the key is not a move). `page`
// rows per PageUp/PageDown; -1 means no row has focus yet.
export function moveFocus(index: number, key: string, count: number, page: number): number | null {
  if (count === 0) return null;
  const last = count - 1;
  const at = Math.min(index, last);
  switch (key) {
    case "ArrowDown":
      return at < 0 ? 0 : Math.min(last, at + 1);
    case "ArrowUp":
      return at < 0 ? 0 : Math.max(0, at - 1);
    case "Home":
      return 0;
    case "End":
      return last;
    case "PageDown":
      return Math.min(last, Math.max(0, at) + Math.max(1, page));
    case "PageUp":
      return Math.max(0, at - Math.max(1, page));
    default:
      return null;
  }
}

// The scrollTop that shows row `index` (`row` px high) within a viewport of
// `height` px now scrolled to `scrollTop`, moving as little as possible.
export function scrollToShow(index: number, row: number, scrollTop: number, height: number): number {
  const top = index * row;
  if (top < scrollTop) return top;
  if (top + row > scrollTop + height) return top + row - height;
  return scrollTop;
}
