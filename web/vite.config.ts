import react from "@vitejs/plugin-react";
import { defineConfig } from "vitest/config";

// The gateway serves dist/ at `/`; under `npm run dev` the API comes from a running `meridian up`.
const registry = process.env.MERIDIAN_URL ?? "http://127.0.0.1:8080";

export default defineConfig({
  plugins: [react()],
  build: {
    outDir: "dist",
    assetsDir: "assets",
    // The import graph, read by scripts/measure.mjs to size the first route.
    manifest: true,
    chunkSizeWarningLimit: 1500,
  },
  server: { proxy: { "/api": registry, "/config": registry } },
  test: { include: ["src/**/*.test.ts"], environment: "node" },
});
