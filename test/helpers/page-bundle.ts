import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'
import type { Page } from 'playwright-core'
import { addBundle, BUNDLES, coverageStarted, coverPages } from './page-coverage.js'

/** The repository's root, from .build/test/helpers/ where the compiled tests run. */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url))

/**
 * Bundles a page script for the browser with esbuild, from its TypeScript source (a path from the
 * repository's root, such as `test/pages/client-page.ts`): what an app's own bundler would make of
 * `client/`. The pages are type-checked with DOM types by client/tsconfig.json. `mode` picks React's
 * build: only the development one runs StrictMode's second mount. Its source map goes to the pages'
 * coverage (see page-coverage.ts).
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
    logLevel: 'silent',
    // The map's sources are relative to the bundle's file, where page-coverage.ts writes it.
    outfile: `${BUNDLES}page.js`,
    sourcemap: 'external',
    sourcesContent: false
  })
  const [map, script] = ['.map', '.js'].map(extension => result.outputFiles.find(file => file.path.endsWith(extension))!.text) as [string, string]
  addBundle(JSON.parse(map), script, inline(script))
  return script
}

/** `script` in an HTML script element. */
const inline = (script: string): string => script.replaceAll('</script', '<\\/script')

/**
 * Serves `script` as a page at `url` (on the service's own origin, so that the page's fetches are
 * same-origin) by answering the browser's request itself: the service has no such route. The pages of
 * `page`'s context are measured, from before their script runs.
 */
export async function servePage (page: Page, url: string, script: string): Promise<void> {
  coverPages(page.context())
  await page.context().route(url, async route => {
    await coverageStarted(route.request().frame().page())
    await route.fulfill({
      contentType: 'text/html; charset=utf-8',
      body: `<!doctype html><meta charset="utf-8"><title>test page</title><script type="module">${inline(script)}</script>`
    })
  })
}
