import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";

// Every file of the web UI under src/.
function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : /\.(ts|svelte)$/.test(e.name) ? [join(dir, e.name)] : [],
  );
}

describe("api", () => {
  it("is the only door to the app's commands", () => {
    const src = join(__dirname, "..");
    const direct = sources(src)
      .filter((f) => !f.endsWith(".test.ts") && relative(src, f) !== join("lib", "api.ts"))
      .filter((f) => /@tauri-apps\/api\/core|\binvoke\s*[<(]/.test(readFileSync(f, "utf8")))
      .map((f) => relative(src, f));
    expect(direct).toEqual([]);
  });
});
