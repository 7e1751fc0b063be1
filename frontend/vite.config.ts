import { defineConfig } from "vite";
import { svelte } from "@sveltejs/vite-plugin-svelte";

// The app loads only what it ships: no CDN, no remote fonts.
export default defineConfig({
  plugins: [svelte()],
  clearScreen: false,
  build: { target: "es2021", outDir: "dist", emptyOutDir: true },
  test: { include: ["src/**/*.test.ts"] },
});
