import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'
import type { Page } from 'playwright-core'

/** The repository's root, from .build/test/helpers/ where the compiled tests run. */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url))

/**
 * Bundles a page script for the browser with esbuild, from its TypeScript source (a path from the
 * repository's root, such as `test/pages/client-page.ts`): what an app's own bundler would make of
 * `client/`. The pages are type-checked with DOM types by client/tsconfig.json. `mode` picks React's
 * build: only the development one runs StrictMode's second mount.
 */
export async function bundlePage (entry: string, mode: 'production' | 'development' = 'production'): Promise<string> {
  const result = await build({
    entryPoints: [ROOT + entry],
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    jsx: 'automatic',
    define: { 'process.env.NODE_ENV': JSON.stringify(mode) },
    // React 19, FlowFi's version, is installed under an alias: tap's reporter needs React 18 as `react`.
    alias: { react: 'react19', 'react-dom': 'react-dom19' },
    logLevel: 'silent'
  })
  return result.outputFiles[0]!.text
}

/**
 * Serves `script` as a page at `url` (on the service's own origin, so that the page's fetches are
 * same-origin) by answering the browser's request itself: the service has no such route.
 */
export async function servePage (page: Page, url: string, script: string): Promise<void> {
  await page.context().route(url, route => route.fulfill({
    contentType: 'text/html; charset=utf-8',
    body: `<!doctype html><meta charset="utf-8"><title>test page</title><script type="module">${script.replaceAll('</script', '<\\/script')}</script>`
  }))
}
