import { readFileSync } from 'node:fs'
import type { Socket } from 'node:net'
import t, { type Test } from 'tap'
import type { Page } from 'playwright-core'
import { startApp, waitUntil, type RunningApp } from './helpers/app.js'
import { browserInstalled, launchBrowser, openPage } from './helpers/browser.js'
import { nginxInstalled, startNginx, streamLocation } from './helpers/nginx.js'
import { makeCertificate } from './helpers/tls.js'

// Headless Chromium on HTTP/2: directly against the service's TLS port, and through nginx as the
// ingress (TLS and h2 at nginx, HTTP/1.1 to the service), as README "Browsers and HTTP/2" describes.
t.setTimeout(120_000)
const TOKEN = 'browser-test-publish-token-0123'
/** A guard against a hang, never a measurement: what a browser gets, it gets in milliseconds here. */
const GUARD_MS = 15_000
/** More EventSources than the six connections a browser opens to one host over HTTP/1.1. */
const SOURCES = 10

interface Received { id: string, data: any, errorsBefore: number }
interface SourceRecord { query: string, opened: number, errors: number, readyState: number, events: Received[] }

/**
 * Opens one EventSource per query on the page's own origin. Each records its opens, its errors (an
 * error is how an EventSource learns its stream ended) and its `stream.cancelled` events, each with
 * the number of errors seen before it arrived.
 */
async function openSources (page: Page, queries: string[]): Promise<void> {
  await page.evaluate(queries => {
    const page = globalThis as any
    page.sources = (page.sources ?? []).concat(queries.map(query => {
      const record = { query, opened: 0, errors: 0, events: [] as unknown[] }
      const source = new page.EventSource(`/events/subscribe?${query}`)
      source.onopen = () => { record.opened++ }
      source.onerror = () => { record.errors++ }
      source.addEventListener('stream.cancelled', (event: any) => {
        record.events.push({ id: event.lastEventId, data: JSON.parse(event.data), errorsBefore: record.errors })
      })
      return { source, record }
    }))
  }, queries)
}

/** What each of the page's EventSources has recorded, with its readyState now (1: open). */
async function records (page: Page): Promise<SourceRecord[]> {
  return await page.evaluate(() => (globalThis as any).sources.map(({ source, record }: any) => ({ ...record, readyState: source.readyState })))
}

/** Waits, in the page, until `condition` holds of the EventSources' records. */
async function untilSources (page: Page, condition: string, timeout = GUARD_MS): Promise<void> {
  await page.waitForFunction(`globalThis.sources.map(source => source.record).${condition}`, undefined, { timeout })
}

/** Publishes from the page, same origin: the request shares the connection of the page's streams. */
async function publishFromPage (page: Page, events: unknown[]): Promise<string[]> {
  const { status, body } = await page.evaluate(async ({ events, token }) => {
    const response = await fetch('/events/publish', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify(events)
    })
    return { status: response.status, body: await response.json() as any }
  }, { events, token: TOKEN })
  if (status !== 202) throw new Error(`publish answered ${status}: ${JSON.stringify(body)}`)
  return body.ids
}

/** The page's resource timing entries of its event streams: [url, nextHopProtocol]. */
async function streamProtocols (page: Page): Promise<Array<[string, string]>> {
  return await page.evaluate(() => (globalThis as any).performance.getEntriesByType('resource')
    .filter((entry: any) => new URL(entry.name).pathname === '/events/subscribe')
    .map((entry: any) => [new URL(entry.name).search, entry.nextHopProtocol]))
}

const cancelled = (streamId: string) => ({ event: 'stream.cancelled', data: { streamId } })
const queries = Array.from({ length: SOURCES }, (_, i) => `streams=browser-${i}`)

/**
 * The page opens ten EventSources to its origin (ten filters), all open at once; an event published
 * for each reaches that one only, while its stream stays open (no buffering holds it back); and the
 * streams' resource timing says h2 (read once they are closed: an entry is made when its response ends).
 */
async function tenStreamsOverH2 (t: Test, page: Page): Promise<void> {
  await openSources(page, queries)
  // Over HTTP/1.1 the seventh would wait for one of the first six to close (see the control below).
  await untilSources(page, 'every(source => source.opened === 1)')
  const ids = await publishFromPage(page, queries.map((_, i) => cancelled(`browser-${i}`)))
  await untilSources(page, 'every(source => source.events.length >= 1)')
  const received = await records(page)
  t.same(received.map(source => source.events.map(event => [event.id, event.data.streamId])),
    ids.map((id, i) => [[id, `browser-${i}`]]), 'each EventSource received its own event, once')
  t.ok(received.every(source => source.readyState === 1 && source.errors === 0 && source.events[0]!.errorsBefore === 0),
    'delivered on the open stream: none ended or reconnected first')

  // A resource timing entry is made when its response ends: close the streams, then read them.
  await page.evaluate(() => (globalThis as any).sources.forEach(({ source }: any) => source.close()))
  await page.waitForFunction(count => (globalThis as any).performance.getEntriesByType('resource')
    .filter((entry: any) => entry.name.includes('/events/subscribe')).length >= count, SOURCES, { timeout: GUARD_MS })
  t.same(await streamProtocols(page), queries.map(query => [`?${query}`, 'h2']), 'every stream went over h2')
}

t.test('the README\'s recommended nginx location is the one the browser test runs', async t => {
  // Compared line by line without indentation: the README shows it inside its server block.
  const unindented = (text: string): string => text.split('\n').map(line => line.trim()).join('\n')
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
  t.ok(unindented(readme).includes(unindented(streamLocation('flowfi_events'))), 'README "Browsers and HTTP/2" shows test/helpers/nginx.ts streamLocation()')
})

// A subtest of its own, so that it can be skipped after the check above has run.
t.test('in headless Chromium', async t => {
  if (!browserInstalled(t)) return
  const certificate = makeCertificate(t)

  t.test('control: over HTTP/1.1 the seventh EventSource to one host waits for a connection', async t => {
    const { url, app } = await startApp(t)
    const browser = await launchBrowser(t)
    const { page } = await openPage(t, browser, `${url}/healthz`)
    await openSources(page, queries.slice(0, 7))
    await untilSources(page, 'filter(source => source.opened === 1).length === 6')
    await waitUntil('the service holds six streams', () => app.broker.size === 6, GUARD_MS)
    t.same((await records(page)).map(source => source.readyState), [1, 1, 1, 1, 1, 1, 0], 'six are open, and the seventh is still connecting')
    await page.evaluate(() => (globalThis as any).sources[0].source.close())
    await untilSources(page, 'at(6).opened === 1')
    t.pass('it opens once one of the six closes')
  })

  t.test('CORS: a page on a listed origin reads Retry-After of a 429 from the service', async t => {
    const site = await startApp(t)
    const service = await startApp(t, { CORS_ORIGINS: site.url, RATE_LIMIT_PER_MINUTE: '1' })
    // Another host, so another origin: the page's is 127.0.0.1.
    const stats = `http://localhost:${new URL(service.url).port}/events/stats`
    const browser = await launchBrowser(t)
    const { page } = await openPage(t, browser, `${site.url}/healthz`)
    const answers = await page.evaluate(async url => {
      const answers = []
      for (let i = 0; i < 2; i++) {
        const response = await fetch(url)
        answers.push([response.status, response.headers.get('retry-after')])
      }
      return answers
    }, stats)
    t.equal(answers[0]![0], 200)
    t.equal(answers[1]![0], 429, 'the second is over RATE_LIMIT_PER_MINUTE')
    t.ok(Number(answers[1]![1]) > 0, `the page reads Retry-After (${answers[1]![1]}): it is exposed`)
  })

  t.test('directly against the service\'s TLS port: ten EventSources over one h2 connection', async t => {
    const { url } = await startApp(t, { ...certificate.env, PUBLISH_TOKEN: TOKEN })
    const browser = await launchBrowser(t)
    const { page, errors } = await openPage(t, browser, `${url}/healthz`)
    await tenStreamsOverH2(t, page)
    t.same(errors, [], 'no error in the page')
  })

  t.test('through nginx (TLS and h2 at nginx, HTTP/1.1 to the service)', async t => {
    if (!nginxInstalled(t)) return
    // The browser comes from 127.0.0.1, nginx from 127.0.0.2: the service, trusting one hop, must see
    // the browser's address, which only X-Forwarded-For tells it.
    const nginxOf = async (service: RunningApp) => await startNginx(t, new URL(service.url).host, certificate, { upstreamFrom: '127.0.0.2' })
    const browser = await launchBrowser(t)

    t.test('ten EventSources over one h2 connection, each event delivered at once', async t => {
      const service = await startApp(t, { PUBLISH_TOKEN: TOKEN, TRUST_PROXY: '1' })
      const peers = new Set<string>()
      service.app.server.on('connection', (socket: Socket) => peers.add(socket.remoteAddress!))
      const nginx = await nginxOf(service)
      const { page, errors } = await openPage(t, browser, `${nginx.url}/healthz`)
      await tenStreamsOverH2(t, page)
      t.same(errors, [], 'no error in the page')
      const publishLine = service.logs.find(line => line.msg === 'incoming request' && (line.req as any)?.url === '/events/publish')
      t.same([...peers], ['127.0.0.2'], 'every connection to the service is nginx\'s')
      t.equal((publishLine?.req as any)?.remoteAddress, '127.0.0.1', 'the service sees the browser\'s address (X-Forwarded-For)')
      // EventSource.close() resets its h2 stream; nginx closes the upstream connection that carried it.
      await waitUntil('the service has seen every stream close', () => service.app.broker.size === 0, GUARD_MS)
      t.match(await (await fetch(`${service.url}/events/stats`)).json(), { connections: { opened: SOURCES, closed: { client_closed: SOURCES } } },
        'the streams closed in the browser closed at the service')
      t.equal(nginx.errorLog(), '', 'nothing in nginx\'s error log')
    })

    t.test('resume: a stream that ends reconnects with Last-Event-ID and gets what it missed, once', async t => {
      // Streams end (cleanly, with a retry hint) after about a second; the browser waits 4 to 12 s
      // (RETRY_MS × 0.5 to 1.5) before it reconnects: the events published in between are missed.
      const service = await startApp(t, { PUBLISH_TOKEN: TOKEN, TRUST_PROXY: '1', MAX_STREAM_AGE_MS: '1000', RETRY_MS: '8000' })
      const nginx = await nginxOf(service)
      const { page, errors } = await openPage(t, browser, `${nginx.url}/healthz`)
      await openSources(page, ['streams=resume'])
      await untilSources(page, 'every(source => source.opened === 1)')
      const [first] = await publishFromPage(page, [cancelled('resume')])
      await untilSources(page, 'every(source => source.events.length === 1)')
      await untilSources(page, 'every(source => source.errors === 1 && source.opened === 1)')
      const missed = await publishFromPage(page, [cancelled('resume'), cancelled('resume')])
      await untilSources(page, 'every(source => source.events.length >= 3)', 12_000 + GUARD_MS)
      const [source] = await records(page)
      t.same(source!.events.map(event => event.id), [first, ...missed], 'every event once, in order')
      t.same(source!.events.map(event => event.errorsBefore), [0, 1, 1], 'the missed ones after the reconnection')
      const stats = await (await fetch(`${service.url}/events/stats`)).json() as any
      t.equal(stats.events.replayed, 2, 'the service replayed the two missed events: the Last-Event-ID header came through nginx')
      t.ok(stats.connections.reconnections >= 1, 'counted as a reconnection')
      t.same(errors, [], 'no error in the page')
    })
  })
})
