// Pure formatting for the pages; tested with vitest.

import type { PullEvent } from "./model";

export function bytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return "?";
  const units = ["B", "kB", "MB", "GB", "TB"];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

export function shortId(id: string): string {
  return id.replace(/^sha256:/, "").slice(0, 12);
}

export type Row = { project?: string | null; name: string };

// Containers grouped by Compose project, standalone ones last, each group in
// `order` (by name unless a column was chosen).
export function groupByProject<T extends Row>(
  rows: T[],
  order: (a: T, b: T) => number = (x, y) => natural(x.name, y.name),
): { project: string | null; rows: T[] }[] {
  const groups = new Map<string | null, T[]>();
  for (const r of rows) {
    const key = r.project ?? null;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key)!.push(r);
  }
  return [...groups.entries()]
    .sort(([a], [b]) => (a === null ? 1 : b === null ? -1 : a.localeCompare(b)))
    .map(([project, rows]) => ({ project, rows: rows.sort(order) }));
}

// Names with numbers in them in the order people count: web-2 before web-10.
export function natural(a: string, b: string): number {
  return a.localeCompare(b, undefined, { numeric: true });
}

export type Listed = Row & { image: string; state: string };
export type StateFilter = "all" | "running" | "stopped";
export type SortKey = "name" | "image" | "state";

// The rows a search and a state filter leave: the search matches name, image
// or Compose project, case-insensitively; "stopped" is anything not running
// or paused.
export function selectRows<T extends Listed>(rows: T[], search: string, state: StateFilter): T[] {
  const s = search.trim().toLowerCase();
  return rows.filter((r) => {
    const live = r.state === "running" || r.state === "paused";
    if (state === "running" && !live) return false;
    if (state === "stopped" && live) return false;
    if (!s) return true;
    return [r.name, r.image, r.project ?? ""].some((v) => v.toLowerCase().includes(s));
  });
}

// A column's order, `dir` 1 ascending or -1 descending; ties by name.
export function orderBy<T extends Listed>(key: SortKey, dir: 1 | -1): (a: T, b: T) => number {
  return (a, b) => (natural(a[key], b[key]) || natural(a.name, b.name)) * dir;
}

// A container's exit code, from its status line ("Exited (137) 2 minutes ago").
export function exitCode(status: string): number | null {
  const m = /^Exited \((-?\d+)\)/.exec(status);
  return m ? Number(m[1]) : null;
}

// An image's age as the docker CLI says it ("3 days ago"), from Unix seconds.
export function ago(created: number, now: number = Date.now() / 1000): string {
  const d = Math.max(0, now - created);
  const units: [number, string][] = [[31536000, "year"], [2592000, "month"], [604800, "week"], [86400, "day"], [3600, "hour"], [60, "minute"]];
  for (const [secs, name] of units) {
    const n = Math.floor(d / secs);
    if (n >= 1) return `${n} ${name}${n > 1 ? "s" : ""} ago`;
  }
  return "just now";
}

// Per-layer pull progress, folded from the engine's stream: a PullEvent whose
// id and numbers may be missing.
export type PullProgress = Pick<PullEvent, "status"> & Partial<PullEvent>;
export type Layer = { id: string; status: string; fraction: number };

export function foldPull(layers: Layer[], ev: PullProgress): Layer[] {
  if (!ev.id || !/^[0-9a-f]{12}$/.test(ev.id)) return layers;
  const old = layers.find((l) => l.id === ev.id);
  const done = /complete|already exists/i.test(ev.status);
  const measured = ev.total && ev.total > 0 && ev.current != null ? Math.min(1, ev.current / ev.total) : 0;
  // A status line without numbers keeps the bar where it was.
  const kept = old && old.status === ev.status ? old.fraction : 0;
  const layer = { id: ev.id, status: ev.status, fraction: done ? 1 : Math.max(measured, kept) };
  return old ? layers.map((l) => (l.id === ev.id ? layer : l)) : [...layers, layer];
}

// Lines matching a search, case-insensitively; all lines for an empty search.
export function filterLines(lines: string[], search: string): string[] {
  const s = search.trim().toLowerCase();
  return s ? lines.filter((l) => l.toLowerCase().includes(s)) : lines;
}

// Splits a multi-line textarea into its non-empty lines (ports, env, volumes).
export function lines(text: string): string[] {
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
}

// An SVG polyline's points for `values` scaled into a w×h box (max at the top).
export function sparkline(values: number[], w: number, h: number, max?: number): string {
  if (values.length === 0) return "";
  const top = Math.max(max ?? Math.max(...values), 1e-9);
  const step = values.length > 1 ? w / (values.length - 1) : 0;
  return values
    .map((v, i) => `${(i * step).toFixed(1)},${(h - (Math.min(v, top) / top) * h).toFixed(1)}`)
    .join(" ");
}

// The console log as text: terminal colour and cursor sequences removed.
export function stripAnsi(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\x1b\[[0-9;?]*[ -/]*[@-~]/g, "");
}

// A duration in milliseconds as a build shows it: "0.4s", "12.3s", "2m 05s".
export function duration(ms: number): string {
  const s = Math.max(0, ms) / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  return `${m}m ${String(Math.floor(s % 60)).padStart(2, "0")}s`;
}
