import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// `npm run dev` serves the app on :5173 and proxies the API to the embedded stack's gateway
// (SPENDSENSE_GATEWAY, default http://127.0.0.1:8000). `npm run build` writes dist/, which the
// gateway serves at / (hashed files under /assets/ are cached for a year, index.html never).
declare const process: { env: Record<string, string | undefined> }; // Node (no @types/node needed)
const gateway = process.env.SPENDSENSE_GATEWAY ?? "http://127.0.0.1:8000";

export default defineConfig({
  plugins: [react()],
  build: {
    target: "es2020",
    sourcemap: false,
    reportCompressedSize: true,
  },
  server: {
    proxy: { "/api": { target: gateway, changeOrigin: false } },
  },
});
