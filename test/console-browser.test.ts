import { fileURLToPath } from 'node:url'
import t from 'tap'
import type { Page } from 'playwright-core'
import { EVENT_TYPES, EXAMPLE_DATA } from '../services/protocol.js'
import { publish, startApp, waitUntil } from './helpers/app.js'
import { browserInstalled, launchBrowser } from './helpers/browser.js'
import { builtConsole } from './helpers/console.js'
import { listedIds, openConsole, publishFromPage, subscribeRequests, untilListed } from './helpers/console-page.js'
import { nowS, signJwt } from './helpers/jwt.js'
import { freePort, redisAnswers, redisEnv } from './helpers/redis.js'
import { makeCertificate } from './helpers/tls.js'

// The console page (GET /console) in headless Chromium, against real servers. Conditions are waited
// for, never timed: what "within a second" means is measured in the README, not asserted here.
t.setTimeout(240_000)
// What is passed to page.evaluate runs in the page: its globals, untyped here (no DOM types for Node).
declare const document: any
declare const window: any
declare const getComputedStyle: any
declare const Node: any

const SECRET = 'a-console-browser-secret-of-32-chars'
const PRODUCTION = { NODE_ENV: 'production', JWT_SECRET: SECRET, CONSOLE: 'true', JWT_CLOCK_TOLERANCE_S: '0' }
const token = (scope: string, expiresInS = 600) =>
  signJwt({ sub: 'console-operator', scope, exp: nowS() + expiresInS }, { alg: 'HS256', secret: SECRET })
/** The clients' reconnections come after the `retry:` hint: short here, so that a restart is seen soon. */
const FAST_RETRY = { RETRY_MS: '200' }
const SCREENSHOT = fileURLToPath(new URL('../../docs/console.png', import.meta.url))

const cancelled = (streamId: string) => ({ event: 'stream.cancelled', data: { streamId } })
const stateOf = (page: Page) => page.textContent('#state')
const untilState = (page: Page, state: string) =>
  page.waitForFunction(state => document.querySelector('#state')!.textContent === state, state)
const notices = (page: Page) => page.$$eval('#events li[data-kind="notice"] .type', items => items.map(item => item.textContent))

t.test('in headless Chromium', async t => {
  if (!browserInstalled(t)) return
  const dir = await builtConsole(t)
  const browser = await launchBrowser(t)

  t.test('a link subscribes; publishing from the page shows the event; no console error, no CSP violation', async t => {
    const { url } = await startApp(t, {}, { consoleDir: dir })
    const { page, problems, requests } = await openConsole(t, browser, `${url}/console?streams=42&all=false`)
    await untilState(page, 'open')
    t.equal(await page.inputValue('#streams'), '42', 'the URL\'s subscription is in the form')
    t.equal(await page.isChecked('#all'), false)
    t.ok(await page.isVisible('#publish-panel'), 'publishing is open in development: the panel is shown')

    // Every type's example is the one of the protocol module, and publishes (event-schema.test.ts validates them).
    t.same(await page.$$eval('#event-type option', options => options.map((option: any) => option.value)), [...EVENT_TYPES])
    await page.selectOption('#event-type', 'stream.withdrawn')
    t.same(JSON.parse(await page.inputValue('#event-data')), EXAMPLE_DATA['stream.withdrawn'], 'pre-filled with the type\'s example')
    await page.click('#publish')
    const fromPage = await page.waitForFunction(() => /^202: published (\S+)$/.exec(document.querySelector('#publish-result')!.textContent!)?.[1])
    const id = await fromPage.jsonValue() as string
    await untilListed(page, id)
    const row = await page.$eval(`#events li[data-id="${id}"]`, item => ({
      type: item.querySelector('.type')!.textContent, payload: JSON.parse(item.querySelector('.payload')!.textContent!)
    }))
    t.same(row, { type: 'stream.withdrawn', payload: EXAMPLE_DATA['stream.withdrawn'] }, 'the event, its type and its payload')
    t.equal(await page.textContent('#last-id'), id, 'the last id is shown')

    const other = await publish(url, [cancelled('42'), cancelled('43')])
    await untilListed(page, other.body.ids[0])
    t.same(await listedIds(page), [other.body.ids[0], id], 'newest first; stream 43 is not subscribed')

    // "Within a second", measured (README, Console): from the publish request to the row on the page.
    const took: number[] = []
    for (let i = 0; i < 20; i++) {
      const started = performance.now()
      await untilListed(page, (await publish(url, cancelled('42'))).body.id)
      took.push(performance.now() - started)
    }
    took.sort((a, b) => a - b)
    t.comment(`publish to row on the page, 20 events: median ${took[10]!.toFixed(1)} ms, max ${took[19]!.toFixed(1)} ms`)

    await page.waitForFunction(() => document.querySelectorAll('#figures .sparkline').length === 4 &&
      document.querySelector('#figures .value')!.textContent !== '–')
    t.same(await page.$$eval('#figures figcaption', captions => captions.map(caption => caption.firstChild!.textContent)),
      ['Open streams', 'Events in', 'Events out', 'Delivery latency'], 'the live figures')
    t.same(problems, [], 'nothing in the console, no failed request of its own')
    const own = requests.map(request => new URL(request.url()).pathname)
    t.ok(own.includes('/console/favicon.svg') && !own.includes('/favicon.ico'), 'its icon is its own: no /favicon.ico request')
  })

  t.test('the checks above would see a violation and an error: a control', async t => {
    const { url } = await startApp(t, {}, { consoleDir: dir })
    const { page, problems } = await openConsole(t, browser, `${url}/console`)
    await page.evaluate(() => {
      const style = document.createElement('style')
      style.textContent = 'body { color: red }'
      document.head.append(style)
      setTimeout(() => { throw new Error('control') })
    })
    await waitUntil('both are seen', () => problems.some(problem => problem.includes('securitypolicyviolation: style-src')) &&
      problems.some(problem => problem === 'page error: control'))
    t.equal(await page.evaluate(() => getComputedStyle(document.body).color), 'rgb(26, 26, 26)', 'the inline style was refused')
  })

  t.test('the form, by keyboard: the URL carries the subscription, and a reload keeps it', async t => {
    const { url } = await startApp(t, {}, { consoleDir: dir })
    const { page, problems } = await openConsole(t, browser, `${url}/console`)
    await page.waitForFunction(() => !document.querySelector('#subscribe').disabled)
    t.equal(await stateOf(page), 'closed', 'nothing subscribed: nothing opened')
    await page.focus('#streams')
    await page.keyboard.press('Enter')
    t.match(await page.textContent('#subscribe-problem'), /Choose streams, users or all/, 'an empty subscription is refused on the page')
    await page.keyboard.type('not an id!')
    await page.keyboard.press('Enter')
    await page.waitForFunction(() => /refused the subscription \(400\): .*stream/.test(document.querySelector('#subscribe-problem').textContent))
    t.equal(await stateOf(page), 'closed', 'a subscription the service refuses opens nothing, and is not retried')
    t.same(problems.sort(), [`400 ${url}/events/subscribe?streams=not&streams=an&streams=id%21`,
      'console error: Failed to load resource: the server responded with a status of 400 (Bad Request)'], 'the refusal, once, and nothing else')
    problems.length = 0
    await page.fill('#streams', '')
    await page.keyboard.type('7, 8')
    await page.keyboard.press('Enter')
    await untilState(page, 'open')
    t.equal(new URL(page.url()).search, '?streams=7&streams=8&all=false')
    const first = await publish(url, cancelled('8'))
    await untilListed(page, first.body.id)

    await page.reload()
    await untilState(page, 'open')
    t.equal(await page.inputValue('#streams'), '7, 8', 'the form, from the URL')
    const second = await publish(url, cancelled('7'))
    await untilListed(page, second.body.id)
    t.same(await listedIds(page), [second.body.id], 'subscribed again after the reload: a new list')
    await page.click('#unsubscribe')
    t.equal(await stateOf(page), 'closed')
    t.equal(new URL(page.url()).search, '', 'stopped: the URL subscribes to nothing')
    t.same(problems, [])
  })

  t.test('pause holds new events back, the filter hides rows, the list keeps the last 500', async t => {
    const { url } = await startApp(t, {}, { consoleDir: dir })
    const { page } = await openConsole(t, browser, `${url}/console?all=true`)
    await untilState(page, 'open')
    await page.click('#pause')
    t.equal(await page.getAttribute('#pause', 'aria-pressed'), 'true')
    const held = await publish(url, [cancelled('p-1'), cancelled('p-2')])
    await page.waitForFunction(() => document.querySelector('#held')!.textContent === '2 held')
    t.same(await listedIds(page), [], 'paused: none shown')
    await page.click('#pause')
    t.same(await listedIds(page), [...held.body.ids].reverse(), 'resumed: shown, newest first')

    await page.fill('#filter', 'P-2')
    t.same(await page.$$eval('#events li:not([hidden])', items => items.map((item: any) => item.dataset.id)), [held.body.ids[1]],
      'the filter shows the rows that contain its text, in any case')
    await page.fill('#filter', '')

    const many = Array.from({ length: 300 }, (_, i) => cancelled(`bulk-${i}`))
    const [oldest] = (await publish(url, many)).body.ids
    await publish(url, many)
    const newest = (await publish(url, cancelled('bulk-last'))).body.id
    await untilListed(page, newest)
    t.equal(await page.$$eval('#events li', items => items.length), 500, 'the last 500 rows')
    t.equal((await listedIds(page))[0], newest)
    t.equal(await page.$(`#events li[data-id="${oldest}"]`), null, 'older rows dropped')
  })

  t.test('a 400 shows its problems next to the field; data that is not JSON is not sent', async t => {
    const { url } = await startApp(t, {}, { consoleDir: dir })
    const { page } = await openConsole(t, browser, `${url}/console`)
    await page.waitForSelector('#publish-panel:not([hidden])')
    await page.selectOption('#event-type', 'stream.created')
    await page.fill('#event-data', JSON.stringify({ sender: 'nobody' }))
    await page.click('#publish')
    await page.waitForFunction(() => document.querySelector('#publish-result')!.textContent!.startsWith('400'))
    const problems = await page.$$eval('#event-data-problems li', items => items.map(item => item.textContent))
    t.ok(problems.some(problem => /^\/data\/sender must be a Stellar account/.test(problem!)), `next to the data: ${problems.join('; ')}`)
    t.equal(await page.getAttribute('#event-data', 'aria-invalid'), 'true')
    t.same(await page.$$eval('#event-type-problems li', items => items.length), 0)

    await page.fill('#event-data', '{ nope')
    await page.click('#publish')
    t.match(await page.textContent('#event-data-problems'), /^\/data is not JSON/, 'told on the page')
    t.equal(await page.textContent('#publish-result'), '', 'and not sent')
    await page.selectOption('#event-type', 'stream.paused')
    t.equal(await page.getAttribute('#event-data', 'aria-invalid'), null, 'another type: its example, and no problem')
  })

  t.test('a restart without Redis: the reconnect and the resync are shown', async t => {
    const port = String(await freePort())
    const first = await startApp(t, { PORT: port, ...FAST_RETRY }, { consoleDir: dir })
    const { page } = await openConsole(t, browser, `${first.url}/console?all=true`)
    await untilState(page, 'open')
    await untilListed(page, (await publish(first.url, cancelled('r'))).body.id)
    await first.app.close()
    await page.waitForFunction(() => document.querySelector('#state')!.textContent !== 'open')
    await startApp(t, { PORT: port, ...FAST_RETRY }, { consoleDir: dir })
    await page.waitForSelector('#events li[data-kind="resync"]')
    await untilState(page, 'open')
    const shown = await notices(page)
    t.match(shown[0], /^reconnected: resuming after \d+-\d+$/, 'the reconnect')
    t.equal(shown[1], 'connection lost: reconnecting', 'after the loss')
    t.match(await page.$eval('#events li[data-kind="resync"] .payload', item => JSON.parse(item.textContent!)), { reason: String, lastEventId: String },
      'the new instance knows nothing of the old one\'s ids: events.resync, shown as such')
  })

  t.test('production: the page asks for a token with events:all and opens nothing without one', async t => {
    const { url, app } = await startApp(t, PRODUCTION, { consoleDir: dir })
    const { page, problems, requests } = await openConsole(t, browser, `${url}/console?all=true`)
    await page.waitForFunction(() => /events:all/.test(document.querySelector('#token-problem')!.textContent!))
    t.equal(await page.evaluate(() => document.activeElement!.id), 'token', 'the token field has the focus')
    t.ok(await page.isDisabled('#subscribe'), 'nothing to subscribe with')
    t.notOk(await page.isVisible('#publish-panel'))
    t.match(await page.textContent('#token-hint'), /required/)
    t.equal(subscribeRequests(app), 0, 'the service saw no subscribe request')
    t.same(requests.map(request => new URL(request.url()).pathname).sort(),
      ['/console', '/console/console.css', '/console/console.js', '/console/favicon.svg', '/console/access'].sort(), 'nor any other: no stats either')
    t.same(problems, [], 'asking is no error')

    await page.fill('#token', token('events:publish'))
    await page.press('#token', 'Enter')
    await page.waitForFunction(() => /^403: the console needs a token with the events:all scope/.test(document.querySelector('#token-problem')!.textContent!))
    t.equal(subscribeRequests(app), 0, 'a token without events:all opens nothing either')

    const operator = token('events:all')
    await page.fill('#token', operator)
    await page.press('#token', 'Enter')
    await untilState(page, 'open')
    t.equal(subscribeRequests(app), 1, 'with it, one stream')
    const streams = requests.filter(request => new URL(request.url()).pathname === '/events/subscribe')
    t.same(streams.map(request => request.method()), ['GET'], 'one request: the stream')
    for (const request of streams) t.equal(await request.headerValue('authorization'), `Bearer ${operator}`, 'the token goes in the Authorization header')
    t.notOk(requests.some(request => request.url().includes(operator.split('.')[2]!)), 'and in no URL')
    t.notOk(await page.isVisible('#publish-panel'), 'events:all alone does not publish: no panel')
    t.ok(await page.isVisible('#publish-note'))
  })

  t.test('production: events.closing is shown, then the expired token is refused and the page asks for another', async t => {
    const { url } = await startApp(t, PRODUCTION, { consoleDir: dir })
    const { page } = await openConsole(t, browser, `${url}/console?all=true`)
    // Long enough to be accepted and open the stream, short enough to see it expire.
    await page.fill('#token', token('events:all events:publish', 4))
    await page.press('#token', 'Enter')
    await untilState(page, 'open')
    t.ok(await page.isVisible('#publish-panel'), 'events:publish too: the panel is shown')
    await page.waitForSelector('#events li[data-kind="closing"]')
    await page.waitForFunction(() => /refused \(401\)/.test(document.querySelector('#token-problem')!.textContent!))
    t.equal(await page.evaluate(() => document.activeElement!.id), 'token')
  })

  t.test('with Redis: a restart on the same port shows the reconnect and loses nothing', async t => {
    if (!await redisAnswers(t)) return
    const env = redisEnv(t, { ...FAST_RETRY })
    const port = String(await freePort())
    const first = await startApp(t, { ...env, PORT: port }, { consoleDir: dir })
    const { page } = await openConsole(t, browser, `${first.url}/console?streams=restart&all=false`)
    await untilState(page, 'open')
    const before = await publishFromPage(page, 'stream.cancelled', { streamId: 'restart' })
    await untilListed(page, before)

    await first.app.close()
    await page.waitForFunction(() => document.querySelector('#state')!.textContent !== 'open')
    // Published while nothing listens on the page's port: through another instance, into the shared log.
    const other = await startApp(t, env, { consoleDir: dir })
    const missed = (await publish(other.url, [cancelled('restart'), cancelled('restart'), cancelled('restart')])).body.ids as string[]
    const second = await startApp(t, { ...env, PORT: port }, { consoleDir: dir })
    await untilListed(page, missed.at(-1)!)
    await untilState(page, 'open')
    const after = await publishFromPage(page, 'stream.cancelled', { streamId: 'restart' })
    await untilListed(page, after)
    t.same(await listedIds(page), [after, ...[...missed].reverse(), before], 'every event once, in order, newest first')
    t.same((await notices(page)).slice(0, 2), [`reconnected: resuming after ${before}`, 'connection lost: reconnecting'])
    t.equal(await page.$$eval('#events li[data-kind="resync"]', items => items.length), 0, 'no resync: the log had it all')
    const stats = await (await fetch(`${second.url}/events/stats`)).json() as any
    t.equal(stats.events.replayed, 3, 'the missed events were replayed from the Redis log')
  })

  t.test('events flowing: the list and the figures move (docs/console.png, with CONSOLE_SCREENSHOT=1)', async t => {
    const { url } = await startApp(t, {}, { consoleDir: dir })
    const { page, problems } = await openConsole(t, browser, `${url}/console?all=true`, { width: 1280, height: 900 })
    await untilState(page, 'open')
    const ids: string[] = []
    // Events of every type, at a rate that changes, until the figures have drawn several reads.
    for (let round = 0; round < 100 && await pointsOf(page, 'Events in') < 8; round++) {
      const type = EVENT_TYPES[round % EVENT_TYPES.length]!
      const more = Array.from({ length: round % 5 }, () => cancelled('42'))
      ids.push(...(await publish(url, [{ event: type, data: EXAMPLE_DATA[type] }, ...more])).body.ids)
      await new Promise(resolve => setTimeout(resolve, 250))
    }
    await untilListed(page, ids.at(-1)!)
    t.ok(await pointsOf(page, 'Events in') >= 8, 'the rate is drawn')
    t.same(await listedIds(page), [...ids].reverse(), 'every event, newest first')
    t.same(problems, [])
    if (process.env.CONSOLE_SCREENSHOT === '1') await page.screenshot({ path: SCREENSHOT })
  })

  t.test('over TLS and h2, as behind no ingress: the same page, the stream over h2', async t => {
    const { url } = await startApp(t, makeCertificate(t).env, { consoleDir: dir })
    const { page, problems } = await openConsole(t, browser, `${url}/console?streams=42&all=false`)
    await untilState(page, 'open')
    const id = await publishFromPage(page, 'stream.cancelled', { streamId: '42' })
    await untilListed(page, id)
    t.equal(await page.evaluate(() => (globalThis as any).performance.getEntriesByType('navigation')[0].nextHopProtocol), 'h2')
    t.same(problems, [])
  })

  t.test('on a phone: one column, no sideways scrolling; every control labelled; text at 4.5:1 or more', async t => {
    const { url } = await startApp(t, {}, { consoleDir: dir })
    const { page } = await openConsole(t, browser, `${url}/console?streams=42&all=false`, { width: 390, height: 844 })
    await untilState(page, 'open')
    await publish(url, [{ event: 'stream.withdrawn', data: EXAMPLE_DATA['stream.withdrawn'] }])
    await page.waitForSelector('#events li[data-kind="event"]')
    t.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), 'nothing wider than the screen')
    t.same(await unlabelled(page), [], 'every input, select, textarea and button has a name')
    const { checked, low } = await contrast(page)
    t.ok(checked > 30, `${checked} elements with text checked`)
    t.same(low, [], 'every one at 4.5:1 or more')
  })
})

/** How many points the sparkline of the figure with this name draws. */
async function pointsOf (page: Page, name: string): Promise<number> {
  return await page.$$eval('#figures figure', (figures, name) => {
    const figure = figures.find(figure => figure.querySelector('figcaption')!.firstChild!.textContent === name)!
    return (figure.querySelector('polyline')!.getAttribute('points') ?? '').split(' ').filter(Boolean).length
  }, name)
}

/** Controls without an accessible name: a label, or text of their own. */
async function unlabelled (page: Page): Promise<string[]> {
  return await page.$$eval('input, select, textarea, button', controls => controls
    .filter((control: any) => control.labels?.length === 0 && control.textContent.trim() === '' && !control.getAttribute('aria-label'))
    .map(control => control.outerHTML))
}

/**
 * Elements with text of their own whose colour is less than 4.5:1 against the first opaque background
 * behind them (WCAG 2 AA), and how many were checked.
 */
async function contrast (page: Page): Promise<{ checked: number, low: string[] }> {
  return await page.evaluate(() => {
    const rgb = (color: string) => color.match(/[\d.]+/g)!.map(Number)
    const luminance = (color: string) => {
      const [r, g, b] = rgb(color).slice(0, 3).map(value => {
        const c = value / 255
        return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4
      })
      return 0.2126 * r! + 0.7152 * g! + 0.0722 * b!
    }
    const background = (element: any): string => {
      for (let at = element; at !== null; at = at.parentElement) {
        const color = getComputedStyle(at).backgroundColor
        if (rgb(color)[3] !== 0) return color
      }
      return 'rgb(255, 255, 255)'
    }
    const low: string[] = []
    let checked = 0
    for (const element of document.querySelectorAll('body *')) {
      const own = [...element.childNodes].some((node: any) => node.nodeType === Node.TEXT_NODE && node.textContent.trim() !== '')
      if (!own || element.offsetParent === null) continue
      checked++
      const style = getComputedStyle(element)
      const [lighter, darker] = [luminance(style.color), luminance(background(element))].sort((a, b) => b - a)
      const ratio = (lighter! + 0.05) / (darker! + 0.05) * Number(style.opacity)
      if (ratio < 4.5) low.push(`${element.tagName.toLowerCase()}.${element.className} "${element.textContent.slice(0, 20)}": ${ratio.toFixed(2)}`)
    }
    return { checked, low }
  })
}
