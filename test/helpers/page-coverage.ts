import { createHash, randomUUID } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'
import { fileURLToPath, pathToFileURL } from 'node:url'
import type { BrowserContext, Page } from 'playwright-core'
import { keepSources, type SourceMap } from './source-map-filter.js'

// The code of client/ that runs only in browsers is measured by Chromium's own V8 coverage, written where
// tap's coverage report reads: tap's processinfo writes each test process's coverage to .tap/coverage/
// (it does not use NODE_V8_COVERAGE), and c8's report maps every file there through its source map.

/** The repository's root, from .build/test/helpers/ where the compiled tests run. */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url))
const COVERAGE = ROOT + '.tap/coverage/'
/** The bundles, written as the pages ran them: their source maps' sources are relative to this directory. */
export const BUNDLES = ROOT + '.build/pages/'
/** Whether tap measures coverage: not with --disable-coverage. */
const MEASURED = process.env._TAPJS_PROCESSINFO_COVERAGE_ === '1'

/** The source maps of the bundles, by the text that a page runs, with client/'s sources only. */
const maps = new Map<string, SourceMap>()
const started = new WeakMap<Page, Promise<void>>()
const covered = new WeakSet<BrowserContext>()

/** `texts`, as pages run them, are a bundle with the source map `map` (whose sources are relative to BUNDLES). */
export function addBundle (map: SourceMap, ...texts: string[]): void {
  const clientOnly = keepSources(map, source => source.startsWith('../../client/'))
  for (const text of texts) maps.set(text, clientOnly)
}

/**
 * Measures the coverage of every page of `context`, its own and those it opens next, and records it
 * before the page or the context closes (after, it is gone).
 */
export function coverPages (context: BrowserContext): void {
  /* c8 ignore next */ // with --disable-coverage only
  if (!MEASURED) return
  if (covered.has(context)) return
  covered.add(context)
  const start = (page: Page): void => {
    started.set(page, page.coverage.startJSCoverage({ resetOnNavigation: false, reportAnonymousScripts: false }))
    recordBeforeClose(page, () => record(page))
  }
  context.pages().forEach(start)
  context.on('page', start)
  recordBeforeClose(context, async () => {
    for (const page of context.pages()) await record(page)
  })
}

/** Resolves when `page`'s coverage runs (at once if it is not measured), so that none of its scripts is missed. */
export async function coverageStarted (page: Page): Promise<void> {
  await started.get(page)
}

function recordBeforeClose (target: Page | BrowserContext, record: () => Promise<void>): void {
  const close = target.close.bind(target) as (options?: object) => Promise<void>
  Object.assign(target, { close: async (options?: object) => { await record(); await close(options) } })
}

/** Writes the coverage of `page`'s bundles in Node's format, each bundle's url a file that holds its text. */
async function record (page: Page): Promise<void> {
  await started.get(page)
  const entries = (await page.coverage.stopJSCoverage()).filter(entry => maps.has(entry.source!))
  if (entries.length === 0) return
  mkdirSync(BUNDLES, { recursive: true })
  const sourceMaps: Record<string, { data: SourceMap }> = {}
  const result = entries.map(({ scriptId, source, functions }) => {
    const file = `${BUNDLES}${createHash('sha256').update(source!).digest('hex').slice(0, 16)}.js`
    writeFileSync(file, source!)
    const url = pathToFileURL(file).href
    sourceMaps[url] = { data: maps.get(source!)! }
    return { scriptId, url, functions }
  })
  mkdirSync(COVERAGE, { recursive: true })
  writeFileSync(`${COVERAGE}page-${randomUUID()}.json`, JSON.stringify({ result, 'source-map-cache': sourceMaps }))
}
