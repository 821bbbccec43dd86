import t, { type Test } from 'tap'
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

/**
 * test/pages/client-page.ts in Chromium, on the origin of a deploy's restarting instance, following
 * STREAM; `publishOne` publishes an event of it to the replica (the backend's publishes go on during a
 * deploy) and keeps its id in `ids`.
 */
async function clientPage (t: Test, env: Record<string, string>) {
  const deploy = await startDeploy(t, env)
  const browser = await launchBrowser(t)
  const { page, errors } = await openPage(t, browser, `${deploy.url}/healthz`)
  await servePage(page, `${deploy.url}/client-page?*`, await bundlePage('test/pages/client-page.ts'))
  await page.goto(`${deploy.url}/client-page?streams=${STREAM}`)
  const ids: string[] = []
  return {
    deploy,
    page,
    errors,
    ids,
    async publishOne () {
      const { status, body } = await publish(deploy.replica.url, [{ event: 'stream.cancelled', data: { streamId: STREAM } }])
      t.equal(status, 202, 'published')
      ids.push(...body.ids)
    },
    received: async () => await page.evaluate(() => (globalThis as unknown as PageWindow).received),
    states: async () => await page.evaluate(() => (globalThis as unknown as PageWindow).states),
    async untilReceived (count: number) {
      await page.waitForFunction(count => (globalThis as unknown as PageWindow).received.length >= count, count, { timeout: GUARD_MS })
    },
    async untilState (state: string) {
      await page.waitForFunction(state => (globalThis as unknown as PageWindow).states.at(-1) === state, state, { timeout: GUARD_MS })
    }
  }
}

t.test('the client in Chromium: events arrive, and a restart and a drain lose and double nothing', async t => {
  if (!browserInstalled(t) || !await redisAnswers(t)) return
  // RETRY_MS low: the client waits at least the server's retry hint before each reconnect.
  const { deploy, errors, ids, publishOne, received, states, untilReceived, untilState } =
    await clientPage(t, { DRAIN_DELAY_MS: '0', DRAIN_WINDOW_MS: '0', RETRY_MS: '100' })
  await untilState('open')
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
  await untilState('open')
  await publishOne()
  await untilReceived(6)
  t.same(await received(), ids, 'a drain: nothing lost or doubled')
  const visited = await states()
  t.ok(visited.filter(state => state === 'open').length >= 3, `it reconnected after each: ${visited.join(', ')}`)
  t.same(errors, [], 'no error on the page')
})

t.test('the window\'s online event: a reconnect that would wait the retry hint (an hour) goes at once, losing nothing', async t => {
  if (!browserInstalled(t) || !await redisAnswers(t)) return
  const { deploy, page, errors, ids, publishOne, received, untilReceived, untilState } = await clientPage(t, { RETRY_MS: '3600000' })
  await untilState('open')
  await publishOne()
  await untilReceived(1)
  await deploy.stop()
  await untilState('connecting')
  await deploy.start()
  await publishOne()
  // Chromium fires online when the network comes back: here, the emulated one.
  await page.context().setOffline(true)
  await page.context().setOffline(false)
  await untilReceived(2)
  t.same(await received(), ids, 'nothing lost or doubled')
  t.same(errors, [], 'no error on the page')
})
