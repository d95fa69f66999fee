import { defineConfig, mergeConfig } from "vitest/config";
import viteConfig from "./vite.config";

// Component tests (`npm test`): React Testing Library in jsdom, the network stubbed at fetch (and, for the
// upload's progress, XMLHttpRequest) by src/test/harness.tsx. The real API is the browser tests' job
// (tests/web).
export default mergeConfig(
  viteConfig,
  defineConfig({
    test: {
      environment: "jsdom",
      include: ["src/**/*.test.tsx"],
      restoreMocks: true,
      testTimeout: 15_000, // headroom on a busy 2-core CI machine (the slowest test waits ~2.5 s for polling)
      unstubGlobals: true,
    },
  }),
);
