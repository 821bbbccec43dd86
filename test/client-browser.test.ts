import t from 'tap'
import { publish } from './helpers/app.js'
import { browserInstalled, launchBrowser, openPage } from './helpers/browser.js'
import { startDeploy } from './helpers/deploy.js'
import { bundlePage, servePage } from './helpers/page-bundle.js'
import { redisAnswers } from './helpers/redis.js'

// The plain client (client/index.ts) in headless Chromium, bundled as an app's bundler would, against
// a deploy on Redis: a restart of its instance and a drain of it lose nothing and double nothing.
t.setTimeout(120_000)
/** A guard against a hang, never a measurement. */
const GUARD_MS = 15_000
const STREAM = 'browser-client'
/** What test/pages/client-page.ts keeps on its window (this file has no DOM types). */
type PageWindow = { received: string[], states: string[] }

t.test('the client in Chromium: events arrive, and a restart and a drain lose and double nothing', async t => {
  if (!browserInstalled(t) || !await redisAnswers(t)) return
  // RETRY_MS low: the client waits at least the server's retry hint before each reconnect.
  const deploy = await startDeploy(t, { DRAIN_DELAY_MS: '0', DRAIN_WINDOW_MS: '0', RETRY_MS: '100' })
  const browser = await launchBrowser(t)
  const { page, errors } = await openPage(t, browser, `${deploy.url}/healthz`)
  await servePage(page, `${deploy.url}/client-page?*`, await bundlePage('test/pages/client-page.ts'))
  await page.goto(`${deploy.url}/client-page?streams=${STREAM}`)

  const ids: string[] = []
  /** Publishes to the replica, which stays up: the backend's publishes go on during a deploy. */
  const publishOne = async () => {
    const { status, body } = await publish(deploy.replica.url, [{ event: 'stream.cancelled', data: { streamId: STREAM } }])
    t.equal(status, 202, 'published')
    ids.push(...body.ids)
  }
  const received = async () => await page.evaluate(() => (globalThis as unknown as PageWindow).received)
  const untilReceived = async (count: number) =>
    await page.waitForFunction(count => (globalThis as unknown as PageWindow).received.length >= count, count, { timeout: GUARD_MS })
  const untilOpen = async () => await page.waitForFunction(() => (globalThis as unknown as PageWindow).states.at(-1) === 'open', undefined, { timeout: GUARD_MS })

  await untilOpen()
  await publishOne()
  await untilReceived(1)
  t.same(await received(), ids, 'an event arrives')

  await deploy.stop()
  await publishOne() // while nothing listens on the client's port
  await deploy.start()
  await publishOne()
  await untilReceived(3)
  t.same(await received(), ids, 'a restart: nothing lost or doubled')

  const drained = deploy.instance.app.drain()
  await publishOne()
  await drained
  await deploy.stop()
  await publishOne()
  await deploy.start()
  await untilOpen()
  await publishOne()
  await untilReceived(6)
  t.same(await received(), ids, 'a drain: nothing lost or doubled')
  const states = await page.evaluate(() => (globalThis as unknown as PageWindow).states)
  t.ok(states.filter(state => state === 'open').length >= 3, `it reconnected after each: ${states.join(', ')}`)
  t.same(errors, [], 'no error on the page')
})
