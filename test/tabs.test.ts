import type { IncomingMessage } from 'node:http'
import t, { type Test } from 'tap'
import type { BrowserContext, Page } from 'playwright-core'
import { createEventsClient } from '../client/index.js'
import { publish, randomAccountId, startApp, waitUntil, type RunningApp } from './helpers/app.js'
import { browserInstalled, launchBrowser } from './helpers/browser.js'
import { nowS, signJwt } from './helpers/jwt.js'
import { bundlePage, servePage } from './helpers/page-bundle.js'

// shareAcrossTabs: the tabs of one browser context (one origin: shared locks, BroadcastChannel and
// localStorage) share one stream to a real service; test/pages/tabs-page.ts is each tab.
t.setTimeout(120_000)
const TOKEN = 'tabs-test-publish-token-0123456'
/** A guard against a hang, never a measurement. */
const GUARD_MS = 15_000

const cancelled = (streamId: string) => ({ event: 'stream.cancelled', data: { streamId } })

async function publishEvents (url: string, events: unknown[]): Promise<string[]> {
  const { status, body } = await publish(url, events, { authorization: `Bearer ${TOKEN}` })
  if (status !== 202) throw new Error(`publish answered ${status}: ${JSON.stringify(body)}`)
  return body.ids
}

interface Subscribe { streams: string[], users: string[], lastEventId: string | undefined }

interface Tabs {
  service: RunningApp
  /** Every subscribe request the service has had, in order. */
  subscribes: Subscribe[]
  /** A new tab of the context, on the filters of `hash` (see test/pages/tabs-page.ts). */
  open (hash: string): Promise<Page>
}

/** A service, and the tabs of `context` on it: `script`, the bundle of test/pages/tabs-page.ts. */
async function tabsOf (t: Test, context: BrowserContext, script: string, env: Record<string, string> = {}): Promise<Tabs> {
  const service = await startApp(t, { PUBLISH_TOKEN: TOKEN, ...env })
  const subscribes: Subscribe[] = []
  service.app.server.on('request', (request: IncomingMessage) => {
    const url = new URL(request.url!, service.url)
    if (url.pathname !== '/events/subscribe') return
    const lastEventId = request.headers['last-event-id']
    subscribes.push({ streams: url.searchParams.getAll('streams'), users: url.searchParams.getAll('users'), lastEventId: lastEventId as string | undefined })
  })
  // The route is the context's: set once, before any tab opens (a page being made meanwhile can miss it).
  await servePage(await context.newPage(), `${service.url}/tabs`, script)
  return {
    service,
    subscribes,
    async open (hash) {
      const page = await context.newPage()
      await page.goto(`${service.url}/tabs#${hash}`)
      return page
    }
  }
}

/** The ids of the events a tab has received, in order. */
async function received (page: Page): Promise<string[]> {
  return await page.evaluate(() => (globalThis as any).tab.received.map((event: any) => event.id))
}

async function untilReceived (page: Page, count: number): Promise<string[]> {
  await page.waitForFunction(count => (globalThis as any).tab.received.length >= count, count, { timeout: GUARD_MS })
  return await received(page)
}

async function untilOpen (...pages: Page[]): Promise<void> {
  for (const page of pages) await page.waitForFunction(() => (globalThis as any).tab.client.state === 'open', undefined, { timeout: GUARD_MS })
}

/** A leader tab, then a follower tab on other filters: open once the leader has one stream for their union. */
async function leaderAndFollower ({ service, subscribes, open }: Tabs, leaderHash: string, followerHash: string): Promise<[Page, Page]> {
  const leader = await open(leaderHash)
  await untilOpen(leader)
  const follower = await open(followerHash)
  await waitUntil('one stream for the union', () => subscribes.length === 2 && service.app.broker.size === 1, GUARD_MS)
  await untilOpen(follower)
  return [leader, follower]
}

t.test('in Node (no Web Locks): shareAcrossTabs connects the client itself', async t => {
  const { url } = await startApp(t, { PUBLISH_TOKEN: TOKEN })
  const client = createEventsClient({ url, streams: ['node'], shareAcrossTabs: true })
  t.teardown(() => client.close())
  const ids: string[] = []
  client.on('stream.cancelled', (_data, { id }) => ids.push(id))
  await waitUntil('the client is open', () => client.state === 'open', GUARD_MS)
  const published = await publishEvents(url, [cancelled('node')])
  await waitUntil('the event arrived', () => ids.length === 1, GUARD_MS)
  t.same(ids, published)
})

t.test('in headless Chromium', async t => {
  if (!browserInstalled(t)) return
  const browser = await launchBrowser(t)
  const script = await bundlePage('test/pages/tabs-page.ts')
  const newContext = async (t: Test) => {
    const context = await browser.newContext()
    t.teardown(() => context.close())
    return context
  }

  t.test('two tabs make one stream; a tab with other filters joins it (the union) and gets only its own', async t => {
    const { service, subscribes, open } = await tabsOf(t, await newContext(t), script)
    const first = await open('streams=s1')
    await untilOpen(first)
    const second = await open('streams=s1')
    await untilOpen(second)
    const [one] = await publishEvents(service.url, [cancelled('s1')])
    t.same(await untilReceived(first, 1), [one], 'the leader got its event')
    t.same(await untilReceived(second, 1), [one], 'the other tab got it over the channel')
    t.equal(subscribes.length, 1, 'one stream opened for the two tabs')
    t.equal(service.app.broker.size, 1)

    const third = await open('streams=s2')
    await waitUntil('the leader has reconnected for the union', () => subscribes.length === 2 && service.app.broker.size === 1, GUARD_MS)
    await untilOpen(third)
    t.same(subscribes[1], { streams: ['s1', 's2'], users: [], lastEventId: one }, 'the union, resuming from the last id')
    const [s1, s2] = await publishEvents(service.url, [cancelled('s1'), cancelled('s2'), cancelled('nobody')])
    const last = await publishEvents(service.url, [cancelled('s1'), cancelled('s2')])
    t.same(await untilReceived(first, 3), [one, s1, last[0]], 'the s1 tabs get s1 only')
    t.same(await untilReceived(second, 3), [one, s1, last[0]])
    t.same(await untilReceived(third, 2), [s2, last[1]], 'the s2 tab gets s2 only')
    t.equal(service.app.broker.size, 1, 'still one stream')

    await third.evaluate(() => (globalThis as any).tab.client.update({ streams: ['s3'] }))
    await waitUntil('the leader has reconnected for the new union', () => subscribes.length === 3 && service.app.broker.size === 1, GUARD_MS)
    t.same(subscribes[2], { streams: ['s1', 's3'], users: [], lastEventId: last[1] }, 'update: the union follows, resuming')
    const [, s3] = await publishEvents(service.url, [cancelled('s2'), cancelled('s3')])
    t.same(await untilReceived(third, 3), [s2, last[1], s3], 'after its update the tab gets s3, not s2')

    await third.close()
    await waitUntil('the leader has reconnected without the closed tab', () => subscribes.length === 4 && service.app.broker.size === 1, GUARD_MS)
    t.same(subscribes[3], { streams: ['s1'], users: [], lastEventId: s3 }, 'a closed tab leaves the union')
  })

  t.test('tabs opened at once settle on one leader and one stream for their union', async t => {
    const { service, subscribes, open } = await tabsOf(t, await newContext(t), script)
    const pages = await Promise.all(['c1', 'c2', 'c3'].map(async id => await open(`streams=${id}`)))
    await waitUntil('one stream for the union', () => subscribes.at(-1)?.streams.length === 3 && service.app.broker.size === 1, GUARD_MS)
    await untilOpen(...pages)
    t.same(subscribes.at(-1)!.streams, ['c1', 'c2', 'c3'])
    const ids = await publishEvents(service.url, [cancelled('c1'), cancelled('c2'), cancelled('c3')])
    for (const [i, page] of pages.entries()) t.same(await untilReceived(page, 1), [ids[i]], `tab ${i + 1} gets its own event`)
    t.equal(service.app.broker.size, 1)
  })

  t.test('closing the leader tab hands over: the next tab resumes from the last id, nothing lost or doubled', async t => {
    const { service, subscribes, open } = await tabsOf(t, await newContext(t), script)
    const leader = await open('streams=h1')
    await untilOpen(leader)
    const follower = await open('streams=h1')
    const other = await open('streams=h2')
    await waitUntil('one stream for the union', () => subscribes.length === 2 && service.app.broker.size === 1, GUARD_MS)
    await untilOpen(follower, other)
    const before = await publishEvents(service.url, [cancelled('h1'), cancelled('h2')])
    await untilReceived(follower, 1)
    await untilReceived(other, 1)

    await leader.close()
    // Published while the next leader takes the lock and connects, and after.
    const during = await publishEvents(service.url, [cancelled('h1'), cancelled('h2')])
    await waitUntil('the next leader has connected', () => subscribes.length === 3 && service.app.broker.size === 1, GUARD_MS)
    const after = await publishEvents(service.url, [cancelled('h1'), cancelled('h2')])
    t.same(await untilReceived(follower, 3), [before[0], during[0], after[0]], 'the h1 tab: every event once, in order')
    t.same(await untilReceived(other, 3), [before[1], during[1], after[1]], 'the h2 tab: every event once, in order')
    // The closed tab may still have handed some of `during` over before it went: any of those ids is the last one.
    t.match(subscribes[2], { streams: ['h1', 'h2'], users: [] }, 'the new leader connected for the union')
    t.ok([before[1], ...during].includes(subscribes[2]!.lastEventId), `and resumed from the last id handed over (${subscribes[2]!.lastEventId})`)

    // close() hands over too.
    await follower.evaluate(() => (globalThis as any).tab.client.close())
    await waitUntil('the last tab leads', () => subscribes.length === 4 && service.app.broker.size === 1, GUARD_MS)
    const last = await publishEvents(service.url, [cancelled('h1'), cancelled('h2')])
    t.same(await untilReceived(other, 4), [before[1], during[1], after[1], last[1]], 'after close(): nothing lost or doubled')
    t.equal(subscribes[3]!.lastEventId, after[1], 'resumed from the last id')
    t.same(await follower.evaluate(() => (globalThis as any).tab.states.at(-1)), 'closed')

    // The last id is kept for a handover only: a tab opened once every other has gone starts from now.
    await other.close()
    const fresh = await open('streams=h1')
    await untilOpen(fresh)
    t.same(subscribes.slice(4), [{ streams: ['h1'], users: [], lastEventId: undefined }], 'a new first tab does not resume from the stored id')
  })

  t.test('events.resync reaches every tab', async t => {
    // Past MAX_REPLAY: the union's resume would replay two events of r2, published before its tab came.
    const { service, subscribes, open } = await tabsOf(t, await newContext(t), script, { MAX_REPLAY: '1' })
    const leader = await open('streams=r1')
    await untilOpen(leader)
    await publishEvents(service.url, [cancelled('r1')])
    await untilReceived(leader, 1)
    await publishEvents(service.url, [cancelled('r2'), cancelled('r2')])
    const follower = await open('streams=r2')
    const resyncs = async (page: Page) => {
      await page.waitForFunction(() => (globalThis as any).tab.resyncs.length > 0, undefined, { timeout: GUARD_MS })
      return await page.evaluate(() => (globalThis as any).tab.resyncs)
    }
    t.match(await resyncs(leader), [{ reason: 'replay_limit' }], 'the leader\'s onResync')
    t.match(await resyncs(follower), [{ reason: 'replay_limit' }], 'the follower\'s onResync')
    const lastIds = async (page: Page) => await page.evaluate(() => (globalThis as any).tab.client.lastEventId)
    t.equal(await lastIds(follower), await lastIds(leader), 'both resume from the resync\'s id')
    t.equal(subscribes.length, 2)
  })

  t.test('tabs on the same users= filters share one stream and keep every event', async t => {
    const { service, subscribes, open } = await tabsOf(t, await newContext(t), script)
    const [account, other] = [randomAccountId(), randomAccountId()]
    const first = await open(`users=${account}`)
    await untilOpen(first)
    const second = await open(`users=${account}`)
    await untilOpen(second)
    // Routed to the account by the payload, by the stream's participants, and by `to`.
    const ids = await publishEvents(service.url, [
      { event: 'stream.created', data: { streamId: 'p1', sender: account, recipient: other } },
      { event: 'stream.withdrawn', data: { streamId: 'p1' } },
      { event: 'stream.fee_config_updated', data: {}, to: [account] }
    ])
    t.same(await untilReceived(first, 3), ids)
    t.same(await untilReceived(second, 3), ids, 'the other tab gets them all over the channel')
    t.equal(subscribes.length, 1, 'one stream')
  })

  t.test('onClosing, onAuthError and the closed state reach every tab', async t => {
    const secret = 'a-test-secret-of-at-least-32-characters!'
    const { service, subscribes, open } = await tabsOf(t, await newContext(t), script, { AUTH_MODE: 'jwt', JWT_SECRET: secret, JWT_CLOCK_TOLERANCE_S: '0' })
    const account = randomAccountId()
    // The leader's token, the group's: once it expires (events.closing), the retry with it gets 401 twice.
    const token = signJwt({ sub: account, exp: nowS() + 4 }, { alg: 'HS256', secret })
    const leader = await open(`users=${account}&token=${token}`)
    await untilOpen(leader)
    const follower = await open(`users=${account}`)
    await untilOpen(follower)
    for (const page of [leader, follower]) {
      await page.waitForFunction(() => (globalThis as any).tab.client.state === 'closed', undefined, { timeout: GUARD_MS })
      t.same(await page.evaluate(() => (globalThis as any).tab.closings), [{ reason: 'token_expired' }], 'onClosing')
      t.same(await page.evaluate(() => (globalThis as any).tab.authErrors), [401, 401], 'a 401, a retry, a second 401')
    }
    t.equal(subscribes.length, 3, 'the group\'s stream, and its two refused reconnections')
    await waitUntil('no stream is left', () => service.app.broker.size === 0, GUARD_MS)
  })

  t.test('filters that do not fit the shared stream connect alone', async t => {
    const { service, subscribes, open } = await tabsOf(t, await newContext(t), script, { MAX_FILTERS: '3' })
    const leader = await open('streams=o1&streams=o2&maxFilters=3')
    await untilOpen(leader)
    const overflow = await open('streams=o3&streams=o4&maxFilters=3')
    await waitUntil('the overflowing tab has its own stream', () => service.app.broker.size === 2, GUARD_MS)
    const account = randomAccountId()
    const byUser = await open(`users=${account}&maxFilters=3`)
    await waitUntil('the users= tab has its own stream', () => service.app.broker.size === 3, GUARD_MS)
    const fitting = await open('streams=o1&maxFilters=3')
    await untilOpen(leader, overflow, byUser, fitting)
    t.same(subscribes.map(subscribe => [...subscribe.streams, ...subscribe.users]), [['o1', 'o2'], ['o3', 'o4'], [account]],
      'the leader alone, then two tabs on their own; the fitting tab opened nothing')

    const ids = await publishEvents(service.url, [cancelled('o1'), cancelled('o3'),
      { event: 'stream.withdrawn', data: { streamId: 'o9' }, users: [account] }])
    t.same(await untilReceived(leader, 1), [ids[0]])
    t.same(await untilReceived(fitting, 1), [ids[0]], 'the fitting tab shares the leader\'s stream')
    t.same(await untilReceived(overflow, 1), [ids[1]])
    t.same(await untilReceived(byUser, 1), [ids[2]])
    t.equal(service.app.broker.size, 3)

    // A tab's update that does not fit the group: it leaves the group and connects alone.
    await fitting.evaluate(account => (globalThis as any).tab.client.update({ users: [account] }), account)
    await waitUntil('the updated tab has its own stream', () => service.app.broker.size === 4, GUARD_MS)
    t.same(subscribes.slice(3).map(subscribe => [...subscribe.streams, ...subscribe.users]), [[account]], 'its own filters only')
    await untilOpen(fitting)
    const [user] = await publishEvents(service.url, [{ event: 'stream.withdrawn', data: { streamId: 'o9' } }])
    // It resumes from its last id with its new filters, as a plain client's update() does: the
    // account's event published after that id comes first.
    t.same(await untilReceived(fitting, 3), [ids[0], ids[2], user], 'then it gets its users= events, resuming')
  })

  t.test('a leader whose update does not fit connects alone, and the next tab takes over', async t => {
    const tabs = await tabsOf(t, await newContext(t), script)
    const { service, subscribes } = tabs
    const [leader, follower] = await leaderAndFollower(tabs, 'streams=l1', 'streams=l2')
    const [first] = await publishEvents(service.url, [cancelled('l2')])
    await untilReceived(follower, 1)
    const account = randomAccountId()
    await leader.evaluate(account => (globalThis as any).tab.client.update({ users: [account] }), account)
    const during = await publishEvents(service.url, [cancelled('l2')])
    await waitUntil('two streams: the leader alone, the follower leading', () => subscribes.length === 4 && service.app.broker.size === 2, GUARD_MS)
    t.same(subscribes.slice(2).map(subscribe => [...subscribe.streams, ...subscribe.users]).sort(), [['l2'], [account]].sort())
    await untilOpen(leader, follower)
    const ids = await publishEvents(service.url, [cancelled('l2'), { event: 'stream.withdrawn', data: { streamId: 'l9' }, users: [account] }])
    t.same(await untilReceived(follower, 3), [first, ...during, ids[0]], 'the follower lost nothing in the handover')
    t.same(await untilReceived(leader, 1), [ids[1]], 'the old leader gets its own events on its own stream')
  })

  t.test('without Web Locks each tab connects itself', async t => {
    const context = await newContext(t)
    await context.addInitScript(() => { delete Object.getPrototypeOf((globalThis as any).navigator).locks })
    const { service, open } = await tabsOf(t, context, script)
    const first = await open('streams=n1')
    const second = await open('streams=n1')
    await untilOpen(first, second)
    t.equal(service.app.broker.size, 2, 'two streams')
    const [id] = await publishEvents(service.url, [cancelled('n1')])
    t.same(await untilReceived(first, 1), [id])
    t.same(await untilReceived(second, 1), [id])
  })

  t.test('a handover resumes from the stored id (none: from now), also in a tab opened after the last event', async t => {
    const tabs = await tabsOf(t, await newContext(t), script)
    const { service, subscribes, open } = tabs
    const [first, second] = await leaderAndFollower(tabs, 'streams=a1', 'streams=a2')
    await first.close()
    await waitUntil('the second tab leads', () => subscribes.length === 3 && service.app.broker.size === 1, GUARD_MS)
    t.same(subscribes[2], { streams: ['a2'], users: [], lastEventId: undefined }, 'nothing stored: from now')

    const third = await open('streams=a3')
    await waitUntil('the union with the third tab', () => subscribes.length === 4 && service.app.broker.size === 1, GUARD_MS)
    await untilOpen(third)
    // A handler taken off gets nothing; a stream.created that names its stream `id` is the a3 tab's.
    await third.evaluate(() => {
      const tab = (globalThis as any).tab
      tab.removed = []
      const handler = (_data: unknown, { id }: { id: string }) => tab.removed.push(id)
      tab.client.on('*', handler)
      tab.client.off('*', handler)
    })
    const [created] = await publishEvents(service.url, [{ event: 'stream.created', data: { id: 'a3', sender: randomAccountId(), recipient: randomAccountId() } }])
    t.same(await untilReceived(third, 1), [created], 'the event named by `id`')
    t.same(await third.evaluate(() => (globalThis as any).tab.removed), [], 'off(): the handler got nothing')

    // Opened after that event, on the same filters (the union stays), it takes over once the others go.
    const fourth = await open('streams=a3')
    await untilOpen(fourth)
    await third.close()
    await second.close()
    await waitUntil('the fourth tab leads', () => subscribes.length === 5 && service.app.broker.size === 1, GUARD_MS)
    t.same(subscribes[4], { streams: ['a3'], users: [], lastEventId: created }, 'it resumes from the stored id, newer than any it had')
  })

  t.test('a tab that has left passes the lock on in its turn', async t => {
    const tabs = await tabsOf(t, await newContext(t), script)
    const { service, subscribes, open } = tabs
    const [leader, closed] = await leaderAndFollower(tabs, 'streams=q1', 'streams=q2')
    const next = await open('streams=q3')
    await untilOpen(next)
    // Its page stays: its lock request, before the next tab's, is granted when the leader goes.
    await closed.evaluate(() => (globalThis as any).tab.client.close())
    await waitUntil('the union without the closed tab', () => subscribes.length === 4 && service.app.broker.size === 1, GUARD_MS)
    await leader.close()
    await waitUntil('the next tab leads', () => subscribes.length === 5 && service.app.broker.size === 1, GUARD_MS)
    t.same(subscribes.slice(2).map(subscribe => subscribe.streams), [['q1', 'q2', 'q3'], ['q1', 'q3'], ['q3']], 'the closed tab opened nothing')
  })

  t.test('a tab opened with a last id drops what the group\'s resume brings again', async t => {
    const { service, subscribes, open } = await tabsOf(t, await newContext(t), script)
    const leader = await open('streams=d1')
    await untilOpen(leader)
    const [first] = await publishEvents(service.url, [cancelled('d1')])
    await untilReceived(leader, 1)
    // Published while no tab is on d2: the union's resume from `first` brings both.
    const [had, missed] = await publishEvents(service.url, [cancelled('d2'), cancelled('d2')])
    const follower = await open(`streams=d2&lastEventId=${had}`)
    await waitUntil('the union, resuming', () => subscribes.length === 2 && service.app.broker.size === 1, GUARD_MS)
    t.same(subscribes[1], { streams: ['d1', 'd2'], users: [], lastEventId: first })
    await untilOpen(follower)
    const [after] = await publishEvents(service.url, [cancelled('d2')])
    t.same(await untilReceived(follower, 2), [missed, after], 'the event it had comes once')
  })

  t.test('a follower tab that navigates away leaves the union', async t => {
    const tabs = await tabsOf(t, await newContext(t), script)
    const { service, subscribes } = tabs
    const [, follower] = await leaderAndFollower(tabs, 'streams=g1', 'streams=g2')
    await follower.goto(`${service.url}/elsewhere`)
    await waitUntil('the leader has reconnected without it', () => subscribes.length === 3 && service.app.broker.size === 1, GUARD_MS)
    t.same(subscribes[2], { streams: ['g1'], users: [], lastEventId: undefined })
  })

  t.test('a follower tab in the back-forward cache is out of the group, and comes back', async t => {
    const tabs = await tabsOf(t, await newContext(t), script)
    const { service, subscribes } = tabs
    const [leader, follower] = await leaderAndFollower(tabs, 'streams=k1', 'streams=k1&streams=k2')
    const [before] = await publishEvents(service.url, [cancelled('k1')])
    await untilReceived(follower, 1)
    // Chromium keeps no page that uses Web Locks in that cache: the page gets the browser's two events as a cached page would.
    const transition = async (type: string) => await follower.evaluate(type => { const page = globalThis as any; page.dispatchEvent(new page.PageTransitionEvent(type, { persisted: true })) }, type)
    await transition('pagehide')
    await waitUntil('the leader has reconnected without it', () => subscribes.length === 3 && service.app.broker.size === 1, GUARD_MS)
    const [away] = await publishEvents(service.url, [cancelled('k1')])
    await untilReceived(leader, 2)
    await transition('pageshow')
    await waitUntil('the leader has reconnected with it', () => subscribes.length === 4 && service.app.broker.size === 1, GUARD_MS)
    const [back] = await publishEvents(service.url, [cancelled('k1')])
    t.same(await untilReceived(leader, 3), [before, away, back])
    // The channel's messages come in order: `away` reached the tab before the group it is back in.
    t.same(await untilReceived(follower, 2), [before, back], 'away, it kept none of the group\'s events')
  })

  t.test('a resync that names no newest event drops the stored id: the next leader starts from now', async t => {
    const context = await newContext(t)
    const { service, subscribes, open } = await tabsOf(t, context, script)
    const key = `flowfi-events ${service.url}`
    // A stored id left by an earlier visit, written by a page of the origin without a client.
    const other = await context.newPage()
    await other.goto(`${service.url}/elsewhere`)
    await other.evaluate(key => (globalThis as any).localStorage.setItem(key, '1-0'), key)
    // A malformed id on a service that has no event yet: the resync carries no id.
    const leader = await open('streams=z1&lastEventId=malformed')
    await leader.waitForFunction(() => (globalThis as any).tab.resyncs.length > 0, undefined, { timeout: GUARD_MS })
    // Another tab's storage learns of the removal a moment later.
    await other.waitForFunction(key => (globalThis as any).localStorage.getItem(key) === null, key, { timeout: GUARD_MS })
    t.pass('the stored id is gone')
    const follower = await open('streams=z1')
    await untilOpen(follower)
    await leader.close()
    await waitUntil('the follower leads', () => subscribes.length === 2 && service.app.broker.size === 1, GUARD_MS)
    t.same(subscribes[1], { streams: ['z1'], users: [], lastEventId: undefined })
  })
})
