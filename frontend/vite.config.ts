// Builds the editor into ../static/dist/ with fixed names (editor.js, editor.css), so Django
// templates load them with {% static 'dist/editor.js' %} and no manifest is needed.
// No @vitejs/plugin-react: esbuild compiles TSX itself (automatic JSX runtime); we need no
// fast refresh, and one plugin fewer keeps the lockfile installable with older npm.
import { defineConfig } from "vitest/config";

export default defineConfig({
  esbuild: { jsx: "automatic" },
  define: { "process.env.NODE_ENV": JSON.stringify("production") },
  build: {
    outDir: "../static/dist",
    emptyOutDir: true,
    target: "es2020",
    sourcemap: false,
    cssCodeSplit: false,
    rollupOptions: {
      input: "src/main.tsx",
      onwarn(warning, warn) {
        // @xyflow/react marks its module "use client" (for React Server Components): meaningless here.
        if (warning.code === "MODULE_LEVEL_DIRECTIVE" || warning.code === "SOURCEMAP_ERROR") return;
        warn(warning);
      },
      output: {
        format: "es",
        entryFileNames: "editor.js",
        chunkFileNames: "editor-[name].js",
        assetFileNames: (asset) => (asset.name?.endsWith(".css") ? "editor.css" : "[name][extname]"),
        inlineDynamicImports: true,
      },
    },
  },
  test: {
    include: ["src/**/*.test.ts", "src/**/*.test.tsx"],
    environment: "node",
  },
});
