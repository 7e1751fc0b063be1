import { describe, expect, it } from "vitest";
import { bytes, filterLines, foldPull, groupByProject, lines, shortId } from "./format";

describe("format", () => {
  it("sizes like the docker CLI", () => {
    expect(bytes(0)).toBe("0 B");
    expect(bytes(1234)).toBe("1.2 kB");
    expect(bytes(56_000_000)).toBe("56 MB");
    expect(bytes(-1)).toBe("?");
  });

  it("short ids", () => {
    expect(shortId("sha256:0123456789abcdef")).toBe("0123456789ab");
  });

  it("groups by compose project, standalone last", () => {
    const g = groupByProject([
      { name: "b", project: null },
      { name: "web", project: "shop" },
      { name: "a", project: undefined },
      { name: "db", project: "shop" },
    ]);
    expect(g.map((x) => x.project)).toEqual(["shop", null]);
    expect(g[0].rows.map((r) => r.name)).toEqual(["db", "web"]);
    expect(g[1].rows.map((r) => r.name)).toEqual(["a", "b"]);
  });

  it("folds pull progress per layer, in first-seen order", () => {
    let l = foldPull([], { status: "Pulling from bb", id: "latest" });
    expect(l).toEqual([]);
    l = foldPull(l, { id: "aaaaaaaaaaaa", status: "Downloading", current: 50, total: 100 });
    l = foldPull(l, { id: "bbbbbbbbbbbb", status: "Waiting" });
    l = foldPull(l, { id: "aaaaaaaaaaaa", status: "Pull complete" });
    expect(l.map((x) => [x.id, x.fraction])).toEqual([
      ["aaaaaaaaaaaa", 1],
      ["bbbbbbbbbbbb", 0],
    ]);
  });

  it("filters log lines and form lines", () => {
    expect(filterLines(["Hello", "world"], "HELL")).toEqual(["Hello"]);
    expect(filterLines(["a"], " ")).toEqual(["a"]);
    expect(lines(" 8080:80 \n\n KEY=v\n")).toEqual(["8080:80", "KEY=v"]);
  });
});

import { sparkline } from "./format";

describe("sparkline", () => {
  it("scales into the box", () => {
    expect(sparkline([], 10, 10)).toBe("");
    expect(sparkline([0, 5, 10], 100, 20)).toBe("0.0,20.0 50.0,10.0 100.0,0.0");
    expect(sparkline([50], 100, 20, 100)).toBe("0.0,10.0");
  });
});

import { stripAnsi } from "./format";

describe("stripAnsi", () => {
  it("keeps the text", () => {
    expect(stripAnsi("\x1b[2m2026\x1b[0m \x1b[32m INFO\x1b[0m ready")).toBe("2026  INFO ready");
  });
});
