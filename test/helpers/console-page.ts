import type { Browser, Page, Request } from 'playwright-core'
import type { FastifyInstance } from 'fastify'
import type { Tap } from './requirements.js'

// What is passed to page.evaluate runs in the page: its globals, untyped here (no DOM types for Node).
declare const document: any

/** Run by the browser before the page's own scripts (so the page's CSP does not apply to it): violations go to the console. */
const REPORT_VIOLATIONS = `document.addEventListener('securitypolicyviolation', event =>
  console.error('securitypolicyviolation: ' + event.violatedDirective + ' ' + event.blockedURI))`

export interface ConsolePage {
  page: Page
  /**
   * What the page should never cause, so far: anything in its console (the page logs nothing; the
   * browser logs requests that failed or were answered with an error there, and CSP refusals),
   * uncaught errors, CSP violations, and requests answered with an error.
   */
  problems: string[]
  /** Every request the page made, in order. */
  requests: Request[]
}

/** Opens `url` in a fresh context (of `viewport`, if given), watching it from before the first byte; closed when the test ends. */
export async function openConsole (t: Tap, browser: Browser, url: string, viewport?: { width: number, height: number }): Promise<ConsolePage> {
  // The tests' certificates are self-signed (makeCertificate).
  const context = await browser.newContext({ ignoreHTTPSErrors: true, ...viewport === undefined ? {} : { viewport } })
  t.teardown(() => context.close())
  const page = await context.newPage()
  const problems: string[] = []
  const requests: Request[] = []
  await page.addInitScript({ content: REPORT_VIOLATIONS })
  page.on('console', message => problems.push(`console ${message.type()}: ${message.text()}`))
  page.on('pageerror', error => problems.push(`page error: ${error.message}`))
  page.on('request', request => requests.push(request))
  page.on('response', response => { if (response.status() >= 400) problems.push(`${response.status()} ${response.url()}`) })
  await page.goto(url)
  return { page, problems, requests }
}

/** Subscribe requests the service has seen, whatever became of them (opened, refused). */
export const subscribeRequests = (app: FastifyInstance): number =>
  Object.values(app.broker.metrics.connections).reduce((sum, count) => sum + count, 0)

/** Publishes `data` of `type` with the page's publish form; returns the id of the 202 the page shows. */
export async function publishFromPage (page: Page, type: string, data: unknown): Promise<string> {
  await page.selectOption('#event-type', type)
  await page.fill('#event-data', JSON.stringify(data))
  await page.click('#publish')
  const result = await page.waitForFunction(() => /^202: published (\S+)$/.exec(document.querySelector('#publish-result').textContent)?.[1])
  return await result.jsonValue() as string
}

/** Waits until the page's list shows the event with this id. */
export async function untilListed (page: Page, id: string): Promise<void> {
  await page.waitForSelector(`#events li[data-id="${id}"]`)
}

/** The ids of the events the list shows, newest first. */
export async function listedIds (page: Page): Promise<string[]> {
  return await page.$$eval('#events li[data-kind="event"]', items => items.map((item: any) => item.dataset.id))
}
