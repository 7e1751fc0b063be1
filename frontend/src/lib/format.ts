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

// Containers grouped by Compose project, standalone ones last, each group by name.
export function groupByProject<T extends Row>(rows: T[]): { project: string | null; rows: T[] }[] {
  const groups = new Map<string | null, T[]>();
  for (const r of rows) {
    const key = r.project ?? null;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key)!.push(r);
  }
  return [...groups.entries()]
    .sort(([a], [b]) => (a === null ? 1 : b === null ? -1 : a.localeCompare(b)))
    .map(([project, rows]) => ({ project, rows: rows.sort((x, y) => x.name.localeCompare(y.name)) }));
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
