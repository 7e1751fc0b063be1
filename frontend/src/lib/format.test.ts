import { describe, expect, it } from "vitest";
import { ago, bytes, duration, exitCode, filterLines, foldPull, groupByProject, lines, orderBy, selectRows, shortId } from "./format";

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

  it("searches and filters containers by state, sorts by a column", () => {
    const rows = [
      { name: "web", image: "nginx:1", state: "running", project: "shop" },
      { name: "db", image: "postgres:16", state: "exited", project: "shop" },
      { name: "job", image: "busybox", state: "paused", project: null },
    ];
    expect(selectRows(rows, "", "running").map((r) => r.name)).toEqual(["web", "job"]);
    expect(selectRows(rows, "", "stopped").map((r) => r.name)).toEqual(["db"]);
    expect(selectRows(rows, "POST", "all").map((r) => r.name)).toEqual(["db"]);
    expect(selectRows(rows, "shop", "all").map((r) => r.name)).toEqual(["web", "db"]);
    expect([...rows].sort(orderBy("image", -1)).map((r) => r.name)).toEqual(["db", "web", "job"]);
    expect(groupByProject(rows, orderBy("state", 1))[0].rows.map((r) => r.name)).toEqual(["db", "web"]);
    const many = ["m-10", "m-2", "m-1"].map((name) => ({ name, image: "i", state: "created", project: null }));
    expect(groupByProject(many)[0].rows.map((r) => r.name)).toEqual(["m-1", "m-2", "m-10"]);
  });

  it("exit codes and ages", () => {
    expect(exitCode("Exited (137) 2 minutes ago")).toBe(137);
    expect(exitCode("Up 3 seconds")).toBeNull();
    expect(ago(1000, 1000 + 3 * 86400 + 5)).toBe("3 days ago");
    expect(ago(1000, 1030)).toBe("just now");
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

describe("duration", () => {
  it("says seconds to a tenth, then minutes", () => {
    expect(duration(400)).toBe("0.4s");
    expect(duration(12_340)).toBe("12.3s");
    expect(duration(125_000)).toBe("2m 05s");
    expect(duration(-5)).toBe("0.0s");
  });
});
