import { readFileSync } from 'node:fs'
import t, { type Test } from 'tap'
import type { Browser, Page } from 'playwright-core'
import { publish, randomAccountId, startApp, waitUntil, type RunningApp } from './helpers/app.js'
import { browserInstalled, launchBrowser, openPage } from './helpers/browser.js'
import { nowS, signJwt } from './helpers/jwt.js'
import { bundlePage, servePage } from './helpers/page-bundle.js'

// The React hook (client/react.ts) in a React 19 app (test/pages/react-app.tsx) in headless
// Chromium, against a real service whose own counters say how many streams it opened.
t.setTimeout(120_000)
const TOKEN = 'react-test-publish-token-0123'
const SECRET = 'an-hs256-secret-that-is-long-enough-for-react-tests'
/** A guard against a hang, never a measurement. */
const GUARD_MS = 15_000

/** What test/pages/react-app.tsx shows: feeds, each a component with its hook options. */
type Feeds = Array<{ name: string, options: Record<string, unknown>, getToken?: string }>
interface FeedView { connected: boolean, reconnecting: boolean, error: string, last: string, resyncs: number, ids: string[], types: string[] }

interface App {
  page: Page
  /** Checks that the page has had no uncaught error and logged no error (React's warnings are console errors). */
  quiet (t: Test): void
}

interface AppOptions {
  /** React's build: development (the default) runs StrictMode's second mount, production is what ships. */
  mode?: 'production' | 'development'
  /**
   * The app on its own page `/react-app`, answered by the test (the default), or added to the
   * service's /healthz page: a page that really comes from loopback, the only kind Chromium lets
   * reach another loopback origin (Local Network Access counts an answered page as public).
   */
  loopbackPage?: boolean
}

/** The app in a page of `url`'s origin. */
async function openApp (t: Test, browser: Browser, url: string, { mode = 'development', loopbackPage = false }: AppOptions = {}): Promise<App> {
  const { page, errors } = await openPage(t, browser, `${url}/healthz`)
  const consoleErrors: string[] = []
  page.on('console', message => { if (message.type() === 'error') consoleErrors.push(message.text()) })
  const script = await bundlePage('test/pages/react-app.tsx', mode)
  if (loopbackPage) {
    await page.addScriptTag({ type: 'module', content: script })
  } else {
    await servePage(page, `${url}/react-app`, script)
    await page.goto(`${url}/react-app`)
  }
  await page.waitForFunction(() => 'show' in globalThis, undefined, { timeout: GUARD_MS })
  return {
    page,
    quiet: t => {
      t.same(errors, [], 'no uncaught error in the page')
      // React's warnings are console errors; Chromium's own about failed requests (a 401 on purpose, the favicon) are not ours.
      t.same(consoleErrors.filter(text => !text.startsWith('Failed to load resource')), [], 'no error on the console')
    }
  }
}

async function show (page: Page, feeds: Feeds, strict = false): Promise<void> {
  await page.evaluate(spec => (globalThis as any).show(spec), { feeds, strict })
}

async function view (page: Page, name: string): Promise<FeedView> {
  return await page.evaluate(name => {
    const section = (globalThis as any).document.querySelector(`[data-feed="${name}"]`)!
    const items = [...section.querySelectorAll('li')]
    const { connected, reconnecting, error, last, resyncs } = section.dataset
    return {
      connected: connected === 'true',
      reconnecting: reconnecting === 'true',
      error: error!,
      last: last!,
      resyncs: Number(resyncs),
      ids: items.map((item: any) => item.dataset.id!),
      types: items.map((item: any) => item.dataset.type!)
    }
  }, name)
}

/** Waits until the feed shows `count` events (or more) and is connected, or shows `error`. */
async function until (page: Page, name: string, condition: 'connected' | { events: number } | 'error'): Promise<void> {
  await page.waitForFunction(({ name, condition }) => {
    const section = (globalThis as any).document.querySelector(`[data-feed="${name}"]`)
    if (section === null) return false
    if (condition === 'connected') return section.dataset.connected === 'true'
    if (condition === 'error') return section.dataset.error !== ''
    return section.querySelectorAll('li').length >= condition.events
  }, { name, condition }, { timeout: GUARD_MS })
}

/** Publishes `stream.withdrawn` events, one per stream id given; returns their ids. */
async function withdraw (url: string, streamIds: string[]): Promise<string[]> {
  const { status, body } = await publish(url, streamIds.map(streamId => ({ event: 'stream.withdrawn', data: { streamId, amount: '1' } })),
    { authorization: `Bearer ${TOKEN}` })
  if (status !== 202) throw new Error(`publish answered ${status}: ${JSON.stringify(body)}`)
  return body.ids
}

/** The service's own counts: streams opened since it started, and open now. */
const streams = ({ app }: RunningApp) => ({ opened: app.broker.metrics.connections.opened, open: app.broker.size })

const newestFirst = (ids: string[]) => [...ids].reverse()

t.test('the README\'s example of the hook is test/pages/react-example.tsx, which `tsc -p client` type-checks', async t => {
  const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8')
  const example = read('test/pages/react-example.tsx').replace('\'../../client/react.js\'', '\'flowfi-events/react\'')
  t.ok(read('README.md').includes(`\`\`\`tsx\n${example}\`\`\`\n`), 'README "The React hook" shows it, importing flowfi-events/react')
})

t.test('in headless Chromium', async t => {
  if (!browserInstalled(t)) return
  const browser = await launchBrowser(t)

  t.test('events arrive and show, newest first; re-renders never reconnect', async t => {
    const service = await startApp(t, { PUBLISH_TOKEN: TOKEN })
    const { page, quiet } = await openApp(t, browser, service.url)
    await show(page, [{ name: 'a', options: { streams: ['r-1', 'r-2'] } }])
    await until(page, 'a', 'connected')
    const ids = await withdraw(service.url, ['r-1', 'other', 'r-2'])
    await until(page, 'a', { events: 2 })
    t.match(await view(page, 'a'), { ids: newestFirst([ids[0]!, ids[2]!]), types: ['withdrawn', 'withdrawn'], last: ids[2], error: '' },
      'the two events of its streams, newest first, as FlowFi\'s hook orders them; the other stream\'s is not there')

    // Each render hands the hook new arrays; then the same filters in another order, repeated.
    for (let i = 1; i <= 3; i++) {
      await page.click('#rerender')
      await page.waitForFunction(renders => (globalThis as any).document.querySelector('main')?.dataset.renders === String(renders), i, { timeout: GUARD_MS })
    }
    await show(page, [{ name: 'a', options: { streams: ['r-2', 'r-1', 'r-2'] } }])
    const [later] = await withdraw(service.url, ['r-1'])
    await until(page, 'a', { events: 3 })
    t.same((await view(page, 'a')).ids, [later, ...newestFirst([ids[0]!, ids[2]!])], 'the stream still delivers, to the same list')
    t.same(streams(service), { opened: 1, open: 1 }, 'one stream in all, still open: no re-render reconnected')
    quiet(t)
  })

  t.test('StrictMode\'s mount, unmount and mount open one stream', async t => {
    const service = await startApp(t, { PUBLISH_TOKEN: TOKEN })
    const { page, quiet } = await openApp(t, browser, service.url)
    await show(page, [{ name: 'a', options: { streams: ['strict'] } }], true)
    await until(page, 'a', 'connected')
    const ids = await withdraw(service.url, ['strict'])
    await until(page, 'a', { events: 1 })
    t.same((await view(page, 'a')).ids, ids, 'the event, once')
    t.same(streams(service), { opened: 1, open: 1 }, 'one stream opened')
    quiet(t)
  })

  t.test('components reading the same share one stream; the last to unmount closes it', async t => {
    const service = await startApp(t, { PUBLISH_TOKEN: TOKEN })
    const { page, quiet } = await openApp(t, browser, service.url)
    await show(page, [{ name: 'a', options: { streams: ['s-1', 's-2'] } }, { name: 'b', options: { streamIds: ['s-2', 's-1'] } }])
    await until(page, 'a', 'connected')
    await until(page, 'b', 'connected')
    const ids = await withdraw(service.url, ['s-1'])
    await until(page, 'a', { events: 1 })
    await until(page, 'b', { events: 1 })
    t.same([(await view(page, 'a')).ids, (await view(page, 'b')).ids], [ids, ids], 'both components got the event')
    t.same(streams(service), { opened: 1, open: 1 }, 'from one stream')

    // One leaves, and another comes in its place with the same filters: the stream stays.
    await show(page, [{ name: 'c', options: { streams: ['s-1', 's-2'] } }])
    await until(page, 'c', 'connected')
    const [next] = await withdraw(service.url, ['s-2'])
    await until(page, 'c', { events: 1 })
    t.same((await view(page, 'c')).ids, [next], 'the newcomer reads the shared stream from now on')
    t.same(streams(service), { opened: 1, open: 1 }, 'still the one stream')

    await show(page, [])
    await waitUntil('the service sees the stream close', () => streams(service).open === 0, GUARD_MS)
    t.equal(service.app.broker.metrics.closes.client_closed, 1, 'closed by the page')
    t.equal(streams(service).opened, 1, 'and none opened since')
    quiet(t)
  })

  t.test('shareAcrossTabs: two tabs of the app make one stream between them', async t => {
    const service = await startApp(t, { PUBLISH_TOKEN: TOKEN })
    const first = await openApp(t, browser, service.url)
    // A second tab of the same browser (context): the page's route is the context's, so it loads the app too.
    const second = await first.page.context().newPage()
    await second.goto(`${service.url}/react-app`)
    await second.waitForFunction(() => 'show' in globalThis, undefined, { timeout: GUARD_MS })
    for (const page of [first.page, second]) await show(page, [{ name: 'tab', options: { streams: ['s-1'], shareAcrossTabs: true } }])
    await until(first.page, 'tab', 'connected')
    await until(second, 'tab', 'connected')
    const ids = await withdraw(service.url, ['s-1'])
    await until(first.page, 'tab', { events: 1 })
    await until(second, 'tab', { events: 1 })
    t.same([(await view(first.page, 'tab')).ids, (await view(second, 'tab')).ids], [ids, ids], 'both tabs got the event')
    t.same(streams(service), { opened: 1, open: 1 }, 'from one stream')
    first.quiet(t)
  })

  t.test('new filters open a new stream, resuming from the last event seen, and close the old one', async t => {
    const service = await startApp(t, { PUBLISH_TOKEN: TOKEN })
    const { page, quiet } = await openApp(t, browser, service.url)
    await show(page, [{ name: 'a', options: { streams: ['f-1'] } }])
    await until(page, 'a', 'connected')
    const [first, missed] = await withdraw(service.url, ['f-1', 'f-2'])
    await until(page, 'a', { events: 1 })
    await show(page, [{ name: 'a', options: { streams: ['f-2'] } }])
    await until(page, 'a', { events: 2 })
    t.same((await view(page, 'a')).ids, [missed, first], 'f-2\'s event published before the change arrives: the new stream resumed after f-1\'s')
    await waitUntil('the old stream closes', () => streams(service).open === 1 && streams(service).opened === 2, GUARD_MS)
    t.equal(service.app.broker.metrics.reconnections, 1, 'the service counted the new stream as a resume')
    const [after] = await withdraw(service.url, ['f-1', 'f-2']).then(ids => ids.slice(1))
    await until(page, 'a', { events: 3 })
    t.same((await view(page, 'a')).ids, [after, missed, first], 'then f-2\'s events only')
    quiet(t)
  })

  t.test('limit bounds the list; clearing it keeps lastEvent', async t => {
    const service = await startApp(t, { PUBLISH_TOKEN: TOKEN })
    const { page, quiet } = await openApp(t, browser, service.url)
    await show(page, [{ name: 'a', options: { streams: ['l-1'], limit: 3 } }])
    await until(page, 'a', 'connected')
    const ids = await withdraw(service.url, Array(5).fill('l-1'))
    await page.waitForFunction(last => (globalThis as any).document.querySelector('[data-feed="a"]')?.dataset.last === last, ids[4], { timeout: GUARD_MS })
    t.same((await view(page, 'a')).ids, newestFirst(ids.slice(2)), 'the three newest of five')
    await page.click('[data-feed="a"] [data-clear]')
    await page.waitForFunction(() => (globalThis as any).document.querySelectorAll('[data-feed="a"] li').length === 0, undefined, { timeout: GUARD_MS })
    t.equal((await view(page, 'a')).last, ids[4], 'clearEvents empties the list, and lastEvent stays')
    quiet(t)
  })

  t.test('a restart of the service: the hook reconnects by itself, and onResync tells the app to refetch', async t => {
    const service = await startApp(t, { PUBLISH_TOKEN: TOKEN })
    const { page, quiet } = await openApp(t, browser, service.url)
    await show(page, [{ name: 'a', options: { url: service.url, streams: ['restart'] } }])
    await until(page, 'a', 'connected')
    const before = await withdraw(service.url, ['restart'])
    await until(page, 'a', { events: 1 })
    await service.app.close()
    await page.waitForFunction(() => (globalThis as any).document.querySelector('[data-feed="a"]').dataset.reconnecting === 'true', undefined, { timeout: GUARD_MS })
    t.match(await view(page, 'a'), { connected: false, reconnecting: true }, 'reconnecting while the service is down')

    // The new instance, on the same port, has none of the old one's history: the resume is a resync.
    const restarted = await startApp(t, { PUBLISH_TOKEN: TOKEN, PORT: new URL(service.url).port })
    // Its backoff starts at up to 1 s and doubles: a few seconds at most, well within the guard.
    await until(page, 'a', 'connected')
    await page.waitForFunction(() => (globalThis as any).document.querySelector('[data-feed="a"]').dataset.resyncs === '1', undefined, { timeout: GUARD_MS })
    const after = await withdraw(restarted.url, ['restart'])
    await until(page, 'a', { events: 2 })
    t.match(await view(page, 'a'), { ids: [...after, ...before], resyncs: 1, reconnecting: false, error: '' }, 'onResync once; events flow again, into the same list')
    quiet(t)
  })

  t.test('FlowFi\'s options, with a real JWT, against a production service, on React\'s production build', async t => {
    const service = await startApp(t, { NODE_ENV: 'production', JWT_SECRET: SECRET, PUBLISH_TOKEN: TOKEN })
    const alice = randomAccountId()
    const bob = randomAccountId()
    const jwtToken = signJwt({ sub: alice, streams: ['7'], exp: nowS() + 600 }, { alg: 'HS256', secret: SECRET })
    const { page, quiet } = await openApp(t, browser, service.url, { mode: 'production' })
    const subscribes: Array<{ url: string, authorization: string | undefined }> = []
    page.on('request', request => {
      if (request.url().includes('/events/subscribe')) subscribes.push({ url: request.url(), authorization: request.headers().authorization })
    })
    await show(page, [
      { name: 'mine', options: { streamIds: ['7'], userPublicKeys: [alice], jwtToken } },
      { name: 'all', options: { subscribeToAll: true, streamIds: ['ignored'], jwtToken } },
      { name: 'anonymous', options: { streamIds: ['7'] } },
      { name: 'getToken', options: { users: [alice], jwtToken: 'not-a-token' }, getToken: jwtToken }
    ])
    await until(page, 'mine', 'connected')
    await until(page, 'all', 'connected')
    await until(page, 'getToken', 'connected')
    const { body } = await publish(service.url, [
      { event: 'stream.withdrawn', data: { streamId: '7', amount: '1' } },
      { event: 'stream.created', data: { streamId: 'alices', sender: alice, recipient: bob } },
      { event: 'stream.created', data: { streamId: 'not-hers', sender: bob, recipient: randomAccountId() } }
    ], { authorization: `Bearer ${TOKEN}` })
    await until(page, 'mine', { events: 2 })
    await until(page, 'all', { events: 1 })
    await until(page, 'getToken', { events: 1 })
    t.match(await view(page, 'mine'), { ids: newestFirst(body.ids.slice(0, 2)), types: ['created', 'withdrawn'] },
      'streamIds and userPublicKeys: stream 7\'s event and the one of a stream of alice, typed as FlowFi\'s hook types them')
    t.same((await view(page, 'all')).ids, [body.ids[1]], 'subscribeToAll with a user\'s token: her account\'s events (streamIds ignored, as FlowFi\'s hook does)')
    t.same((await view(page, 'getToken')).ids, [body.ids[1]], 'getToken\'s token is the one sent: it wins over jwtToken')

    await until(page, 'anonymous', 'error')
    t.match(await view(page, 'anonymous'), { connected: false, reconnecting: false, error: 'the events service refused the token (401)' },
      'without a token: the 401 is the error, and the hook stops instead of retrying blindly')
    const withToken = subscribes.filter(request => request.authorization !== undefined)
    t.same(withToken.map(request => request.authorization), Array(3).fill(`Bearer ${jwtToken}`), 'the tokens went in the Authorization header')
    t.notOk(subscribes.some(request => request.url.includes(jwtToken.split('.')[2]!)), 'and in no URL')
    quiet(t)
  })

  t.test('without url: NEXT_PUBLIC_API_URL, where FlowFi\'s hook finds its API, on another origin (CORS)', async t => {
    const site = await startApp(t)
    const service = await startApp(t, { NODE_ENV: 'production', JWT_SECRET: SECRET, PUBLISH_TOKEN: TOKEN, CORS_ORIGINS: site.url })
    // Another host, so another origin: the page's is 127.0.0.1.
    const api = `http://localhost:${new URL(service.url).port}`
    const alice = randomAccountId()
    const jwtToken = signJwt({ sub: alice, exp: nowS() + 600 }, { alg: 'HS256', secret: SECRET })
    const { page, quiet } = await openApp(t, browser, site.url, { mode: 'production', loopbackPage: true })
    // Next.js writes the variable into the bundle; here the page defines it before the hook connects.
    await page.evaluate(api => Object.assign(globalThis, { process: { env: { NEXT_PUBLIC_API_URL: api } } }), api)
    await show(page, [{ name: 'a', options: { userPublicKeys: [alice], jwtToken } }])
    await until(page, 'a', 'connected')
    const { body } = await publish(service.url, [{ event: 'stream.created', data: { streamId: 'cors', sender: alice, recipient: randomAccountId() } }],
      { authorization: `Bearer ${TOKEN}` })
    await until(page, 'a', { events: 1 })
    t.same((await view(page, 'a')).ids, body.ids, 'the event came from the service named by NEXT_PUBLIC_API_URL')
    t.equal(site.app.broker.metrics.connections.opened, 0, 'the page\'s own origin was not asked')
    quiet(t)
  })

  t.test('nothing to subscribe to: the hook stays idle and opens no stream', async t => {
    const service = await startApp(t, { PUBLISH_TOKEN: TOKEN })
    const { page, quiet } = await openApp(t, browser, service.url)
    await show(page, [{ name: 'idle', options: { streams: [] } }, { name: 'a', options: { streams: ['idle-1'] } }])
    await until(page, 'a', 'connected')
    t.match(await view(page, 'idle'), { connected: false, reconnecting: false, error: '', ids: [] }, 'idle: not connected, not reconnecting, no error')
    t.same(streams(service), { opened: 1, open: 1 }, 'the other feed\'s stream only')
    quiet(t)
  })

  t.test('a service that is not there: the hook shows the error, and reconnects', async t => {
    const service = await startApp(t, { PUBLISH_TOKEN: TOKEN })
    const { page, quiet } = await openApp(t, browser, service.url)
    await service.app.close()
    await show(page, [{ name: 'a', options: { url: service.url, streams: ['away'] } }])
    await until(page, 'a', 'error')
    t.match(await view(page, 'a'), { connected: false, reconnecting: true, error: 'Failed to fetch' }, 'the fetch\'s error, while it retries')
    quiet(t)
  })
})
