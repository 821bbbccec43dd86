import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import t, { type Test } from 'tap'
import { createEventsClient, isNewer, subscribeUrl, type ClientState, type EventsClient } from '../client/index.js'
import { publish, randomAccountId, startApp, waitUntil } from './helpers/app.js'
import { startDeploy } from './helpers/deploy.js'
import { redisAnswers } from './helpers/redis.js'
import { openStream } from './helpers/sse-client.js'
import { nowS, signJwt } from './helpers/jwt.js'

const cancelled = (streamId: string) => ({ event: 'stream.cancelled', data: { streamId } })

async function publishIds (url: string, events: unknown[], headers: Record<string, string> = {}): Promise<string[]> {
  const { status, body } = await publish(url, events, headers)
  if (status !== 202) throw new Error(`publish failed: ${status}`)
  return body.ids
}

/** The sockets of the event streams `server` has been asked for so far. */
function streamSockets (server: Server): Set<Socket> {
  const sockets = new Set<Socket>()
  server.on('request', (request: IncomingMessage) => {
    if (request.url?.startsWith('/events/subscribe')) sockets.add(request.socket)
  })
  return sockets
}

/** The ids of the `stream.cancelled` events `client` delivers, in order. */
function receivedIds (client: EventsClient): string[] {
  const ids: string[] = []
  client.on('stream.cancelled', (_data, meta) => ids.push(meta.id))
  return ids
}

/**
 * A clock the test runs: timers wait until `fire()` runs them, and record what they asked for; `now`
 * moves only when the test moves `time`. `options` are the client's options that take it.
 */
function manualClock () {
  const pending = new Map<number, { fn: () => void, ms: number }>()
  let next = 0
  const clock = {
    asked: [] as number[],
    time: 0,
    /** Runs the timers whose delay passes `filter` (a reconnect's, say, not the heartbeat deadline's). */
    fire (filter: (ms: number) => boolean = () => true) {
      for (const [handle, timer] of pending) if (filter(timer.ms)) { pending.delete(handle); timer.fn() }
    },
    /** Whether a timer whose delay passes `filter` is waiting. */
    waits (filter: (ms: number) => boolean) { return [...pending.values()].some(timer => filter(timer.ms)) },
    options: {
      setTimeout (fn: () => void, ms: number) { pending.set(++next, { fn, ms }); clock.asked.push(ms); return next },
      clearTimeout (handle: unknown) { pending.delete(handle as number) },
      now: () => clock.time
    }
  }
  return clock
}

/** The default heartbeat deadline (30 s) is the only timer of 30 s or more that the tests below leave waiting. */
const reconnect = (ms: number) => ms < 30_000

t.test('ids compare as numbers; urls gain the subscribe path unless they have it', async t => {
  t.ok(isNewer('10-0', '9-5'))
  t.ok(isNewer('9-6', '9-5'))
  t.notOk(isNewer('9-5', '9-5'))
  t.notOk(isNewer('junk', undefined))
  t.ok(isNewer('1-0', undefined))
  t.equal(subscribeUrl('https://x.test/', { streams: [1, '2'], users: ['GA', 'GB'], all: true }),
    'https://x.test/events/subscribe?streams=1&streams=2&users=GA&users=GB&all=true')
  t.equal(subscribeUrl('https://x.test/v1/events/subscribe', {}), 'https://x.test/v1/events/subscribe')
})

t.test('typed delivery, then a dropped socket resumes with nothing lost or doubled', async t => {
  const { url, app } = await startApp(t)
  const sockets = streamSockets(app.server)
  const clock = manualClock()
  const states: ClientState[] = []
  const client = createEventsClient({
    url, streams: ['a'], ...clock.options,
    random: () => 0.5, onStateChange: s => states.push(s)
  })
  t.teardown(() => client.close())
  const received: string[] = []
  const all: string[] = []
  client.on('stream.cancelled', (data, meta) => { received.push(meta.id); t.equal(data.streamId, 'a') })
  client.on('*', (_data, meta) => all.push(meta.type))
  await waitUntil('open', () => client.state === 'open')
  const before = await publishIds(url, [cancelled('a'), cancelled('a')])
  await waitUntil('2 events', () => received.length === 2)

  for (const socket of sockets) socket.destroy() // the network drops under the event stream
  await waitUntil('a reconnect waits', () => clock.waits(reconnect))
  t.equal(client.state, 'connecting', 'a reconnect that waits is connecting')
  const missed = await publishIds(url, [cancelled('a'), cancelled('a')])
  clock.fire(reconnect)
  await waitUntil('4 events', () => received.length === 4)
  t.same(received, [...before, ...missed])
  t.same(all, Array(4).fill('stream.cancelled'))
  t.equal(client.lastEventId, missed[1])
  t.same(states, ['open', 'connecting', 'open'])
})

t.test('backoff: full jitter, exponential up to 30 s, never below the server retry', async t => {
  const clock = manualClock()
  let attempts = 0
  const client = createEventsClient({
    url: 'http://127.0.0.1:1', random: () => 1, ...clock.options,
    fetch: async () => { attempts++; throw new TypeError('connection refused') }
  })
  t.teardown(() => client.close())
  for (let n = 1; n <= 7; n++) {
    await waitUntil(`attempt ${n}`, () => attempts === n && clock.waits(() => true))
    clock.fire()
  }
  t.same(clock.asked, [1000, 2000, 4000, 8000, 16000, 30000, 30000])
})

const SECRET = 'a-test-secret-of-at-least-32-characters!'

t.test('401 calls onAuthError and retries once with a fresh token; a second 401 closes', async t => {
  const { url } = await startApp(t, { AUTH_MODE: 'jwt', JWT_SECRET: SECRET, JWT_CLOCK_TOLERANCE_S: '0' })
  const statuses: number[] = []
  const client = createEventsClient({ url, all: true, getToken: () => 'not-a-jwt', onAuthError: s => statuses.push(s) })
  await waitUntil('closed', () => client.state === 'closed')
  t.same(statuses, [401, 401])
})

t.test('a bad resume id: onResync, then live', async t => {
  const { url } = await startApp(t)
  const reasons: string[] = []
  const client = createEventsClient({ url, all: true, lastEventId: 'not-an-id', onResync: r => reasons.push(r.reason) })
  t.teardown(() => client.close())
  await waitUntil('resync', () => reasons.length === 1)
  t.same(reasons, ['malformed_id'])
  const ids = await publishIds(url, [cancelled('a')])
  await waitUntil('live', () => client.lastEventId === ids[0])
})

t.test('a dead stream (no heartbeat in time) is aborted and reconnected; update() reconnects with new filters', async t => {
  const { url } = await startApp(t)
  const clock = manualClock()
  const errors: unknown[] = []
  const client = createEventsClient({
    url, streams: ['a'], heartbeatTimeoutMs: 123_456, random: () => 0, onError: e => errors.push(e),
    ...clock.options
  })
  t.teardown(() => client.close())
  const received: string[] = []
  const handler = (data: { streamId: string | number }) => received.push(String(data.streamId))
  client.on('stream.cancelled', handler)
  await waitUntil('open', () => client.state === 'open')
  clock.fire(ms => ms === 123_456)
  await waitUntil('a reconnect waits', () => clock.waits(ms => ms !== 123_456))
  t.equal(errors.length, 1, 'the dead stream is reported')
  clock.fire(ms => ms !== 123_456)
  await waitUntil('open again', () => client.state === 'open')
  client.update({ streams: ['b'] })
  await waitUntil('open on b', () => client.state === 'open')
  await publishIds(url, [cancelled('a'), cancelled('b')])
  await waitUntil('b', () => received.length === 1)
  t.same(received, ['b'])
  client.off('stream.cancelled', handler)
  await publishIds(url, [cancelled('b')])
  await waitUntil('delivered', () => client.lastEventId !== undefined)
  client.close()
  t.equal(client.state, 'closed')
  t.equal(errors.length, 1, 'neither update() nor close() is an error')
})

t.test('events.closing: a fresh token and a reconnect from the last id, nothing lost or doubled', async t => {
  const { url } = await startApp(t, { AUTH_MODE: 'jwt', JWT_SECRET: SECRET, JWT_CLOCK_TOLERANCE_S: '0' })
  const HS = { alg: 'HS256' as const, secret: SECRET }
  const alice = randomAccountId()
  const bob = randomAccountId()
  let tokens = 0
  // When the client is told, and how many tokens it had asked for by then: the fresh one comes after.
  const closings: Array<{ reason: string, tokens: number }> = []
  // the first token expires within 2 s: the server ends that stream with events.closing
  const client = createEventsClient({
    url, users: [alice], withCredentials: true, getToken: () => signJwt({ sub: alice, exp: nowS() + (++tokens === 1 ? 2 : 600) }, HS),
    onClosing: ({ reason }) => closings.push({ reason, tokens })
  })
  t.teardown(() => client.close())
  const received: string[] = []
  client.on('stream.created', (data, meta) => { received.push(meta.id); t.equal(data.sender, alice) })
  const publisher = { authorization: `Bearer ${signJwt({ sub: 'backend', scope: 'events:publish', exp: nowS() + 600 }, HS)}` }
  const created = (id: string) => ({ event: 'stream.created', data: { id, sender: alice, recipient: bob } })
  await waitUntil('open', () => client.state === 'open')
  const ids = await publishIds(url, [created('e-1')], publisher)
  await waitUntil('a second token', () => tokens === 2, 10_000)
  ids.push(...await publishIds(url, [created('e-2')], publisher))
  await waitUntil('2 events', () => received.length === 2)
  t.same(received, ids)
  t.same(closings, [{ reason: 'token_expired', tokens: 1 }], 'onClosing, before the fresh token')
})

t.test('a resume from an id older than the history: onResync, and the next resume starts at the resync id', async t => {
  const { url } = await startApp(t)
  const [first] = await publishIds(url, [cancelled('a')])
  const resyncs: string[] = []
  const client = createEventsClient({ url, all: true, lastEventId: '1-0', onResync: r => resyncs.push(r.reason) })
  t.teardown(() => client.close())
  await waitUntil('resync', () => resyncs.length === 1)
  t.equal(client.lastEventId, first, 'the resync carries the newest id')
})

t.test('403 closes the client at once', async t => {
  const { url } = await startApp(t, { AUTH_MODE: 'jwt', JWT_SECRET: SECRET })
  const statuses: number[] = []
  const token = signJwt({ sub: randomAccountId(), exp: nowS() + 600 }, { alg: 'HS256', secret: SECRET })
  const client = createEventsClient({ url, users: [randomAccountId()], getToken: () => token, onAuthError: s => statuses.push(s) })
  await waitUntil('closed', () => client.state === 'closed')
  t.same(statuses, [403])
})

t.test('a 400 (the filters refused) closes the client with the server\'s reason instead of retrying the same request', async t => {
  const { url } = await startApp(t)
  const errors: string[] = []
  const client = createEventsClient({ url, users: ['not-a-stellar-key'], onError: error => errors.push(String(error)) })
  await waitUntil('closed', () => client.state === 'closed')
  t.equal(errors.length, 1)
  t.match(errors[0], /refused the subscription \(400\): .*user/i)

  // A 400 without the service's JSON body (a proxy's page): closed all the same, with no reason to give.
  const server = createServer((_request, response) => { response.writeHead(400, { 'content-type': 'text/html' }).end('<h1>Bad Request</h1>') })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => server.close())
  const bare: string[] = []
  const proxied = createEventsClient({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, all: true, onError: error => bare.push(String(error)) })
  await waitUntil('closed', () => proxied.state === 'closed')
  t.same(bare, ['Error: the events service refused the subscription (400): no reason given'])
})

t.test('an event whose id is not newer than the last is dropped; a 404 waits the backoff; update after close opens nothing', async t => {
  // A server of the test's own, on a real socket: ours never sends an id twice.
  const server = createServer((request, response) => {
    if (!request.url?.startsWith('/events/subscribe')) { response.writeHead(404).end(); return }
    response.writeHead(200, { 'content-type': 'text/event-stream' })
    response.end(['5-0', '4-9', '5-0', '6-0'].map(id => `id: ${id}\nevent: stream.cancelled\ndata: {"streamId":"a"}\n\n`).join(''))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => server.close())
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const clock = manualClock()
  const client = createEventsClient({ url: base, all: true, random: () => 1, ...clock.options })
  const received: string[] = []
  client.on('stream.cancelled', (_data, meta) => received.push(meta.id))
  await waitUntil('the stream ended and a retry is scheduled', () => clock.waits(() => true))
  t.same(received, ['5-0', '6-0'])
  client.close()
  client.update({ all: true })
  t.equal(client.state, 'closed', 'a closed client stays closed')

  const lost = createEventsClient({ url: `${base}/elsewhere/`, all: true, random: () => 1, ...clock.options })
  t.teardown(() => lost.close())
  const asked = clock.asked.length
  await waitUntil('a 404 waits', () => clock.waits(() => true))
  t.same(clock.asked.slice(asked).filter(reconnect), [1000], 'no Retry-After: the backoff alone')
})

/** A real EventTarget, standing in for the window in Node, that counts the listeners it holds. */
class CountingTarget extends EventTarget {
  listeners = 0
  override addEventListener (...args: Parameters<EventTarget['addEventListener']>) { this.listeners++; super.addEventListener(...args) }
  override removeEventListener (...args: Parameters<EventTarget['removeEventListener']>) { this.listeners--; super.removeEventListener(...args) }
}

t.test('online and pageshow: a silent open stream is replaced at once, a waiting reconnect goes now; close() stops listening', async t => {
  const { url, app } = await startApp(t)
  const sockets = streamSockets(app.server)
  const clock = manualClock()
  const window = new CountingTarget()
  // a heartbeat interval of 30 s (half the timeout), and a deadline the reconnect filter leaves alone
  const client = createEventsClient({ url, streams: ['a'], heartbeatTimeoutMs: 60_000, random: () => 1, events: window, ...clock.options })
  const received = receivedIds(client)
  t.equal(window.listeners, 2)
  await waitUntil('open', () => client.state === 'open')
  const ids = await publishIds(url, [cancelled('a')])
  await waitUntil('1 event', () => received.length === 1)

  window.dispatchEvent(new Event('online'))
  t.equal(client.state, 'open', 'a stream that sent a byte within the heartbeat interval is left alone')
  clock.time += 30_001
  window.dispatchEvent(new Event('pageshow'))
  t.equal(client.state, 'connecting', 'silent for longer than the heartbeat interval: replaced at once')
  window.dispatchEvent(new Event('online'))
  await waitUntil('open again', () => client.state === 'open')
  t.equal(sockets.size, 2, 'one new stream, not one per event')

  for (const socket of sockets) socket.destroy()
  await waitUntil('a reconnect waits', () => clock.waits(reconnect))
  ids.push(...await publishIds(url, [cancelled('a'), cancelled('a')]))
  window.dispatchEvent(new Event('online'))
  t.notOk(clock.waits(reconnect), 'the backoff is cancelled: the reconnect goes now')
  await waitUntil('3 events', () => received.length === 3)
  t.same(received, ids, 'nothing lost or doubled')
  client.close()
  t.equal(window.listeners, 0)
})

t.test('a 429 with Retry-After (another stream holds the only place) waits that long, then resumes: nothing lost or doubled', async t => {
  const { url, app } = await startApp(t, { MAX_CONNECTIONS_PER_IP: '1' })
  const sockets = streamSockets(app.server)
  const clock = manualClock()
  const client = createEventsClient({ url, streams: ['a'], random: () => 0, ...clock.options })
  t.teardown(() => client.close())
  const received = receivedIds(client)
  await waitUntil('open', () => client.state === 'open')
  const ids = await publishIds(url, [cancelled('a')])
  await waitUntil('1 event', () => received.length === 1)

  for (const socket of sockets) socket.destroy()
  await waitUntil('the place is free', () => app.connectionLimits.openFrom('127.0.0.1') === 0 && clock.waits(reconnect))
  const other = await openStream(`${url}/events/subscribe?all=true`) // another tab takes the place
  t.teardown(() => other.close())
  t.equal(other.status, 200)
  clock.fire(reconnect)
  await waitUntil('the Retry-After wait', () => clock.waits(ms => ms === 10_000))
  t.equal(client.state, 'connecting')
  ids.push(...await publishIds(url, [cancelled('a'), cancelled('a')]))
  other.close()
  await waitUntil('the place is free again', () => app.connectionLimits.openFrom('127.0.0.1') === 0)
  clock.fire(ms => ms === 10_000)
  await waitUntil('3 events', () => received.length === 3)
  t.same(received, ids, 'nothing lost or doubled')
})

/** A client of a deploy's restarting instance, on the manual clock, open, with one event received from the replica. */
async function followDeploy (t: Test, env: Record<string, string> = {}) {
  const deploy = await startDeploy(t, env)
  const clock = manualClock()
  const client = createEventsClient({ url: deploy.url, streams: ['a'], random: () => 0, ...clock.options })
  t.teardown(() => client.close())
  const received = receivedIds(client)
  await waitUntil('open', () => client.state === 'open')
  const ids = await publishIds(deploy.replica.url, [cancelled('a')])
  await waitUntil('1 event', () => received.length === 1)
  return { deploy, clock, client, received, ids }
}

t.test('a restart (same port, history in Redis): refused while down, then resumed, nothing lost or doubled', async t => {
  if (!await redisAnswers(t)) return
  const { deploy, clock, client, received, ids } = await followDeploy(t)
  await deploy.stop()
  await waitUntil('a reconnect waits', () => clock.waits(reconnect))
  ids.push(...await publishIds(deploy.replica.url, [cancelled('a')]))
  clock.fire(reconnect) // nothing listens on the port: refused, and it tries again later
  await waitUntil('another reconnect waits', () => clock.waits(reconnect))
  t.equal(client.state, 'connecting')
  await deploy.start()
  ids.push(...await publishIds(deploy.replica.url, [cancelled('a')]))
  clock.fire(reconnect)
  await waitUntil('3 events', () => received.length === 3)
  t.same(received, ids, 'nothing lost or doubled')
})

t.test('a drain: the retry hint is waited for, the draining instance sends the client away again, the new one replays; nothing lost or doubled', async t => {
  if (!await redisAnswers(t)) return
  const { deploy, clock, received, ids } = await followDeploy(t, { DRAIN_DELAY_MS: '0', DRAIN_WINDOW_MS: '0', RETRY_MS: '1000' })
  const sockets = streamSockets(deploy.instance.app.server)
  const drained = deploy.instance.app.drain()
  await waitUntil('a reconnect waits', () => clock.waits(reconnect))
  t.ok(clock.asked.at(-1)! >= 500, `it waits ${clock.asked.at(-1)} ms: the retry hint (RETRY_MS with jitter), not the random 0`)
  ids.push(...await publishIds(deploy.replica.url, [cancelled('a')]))
  clock.fire(reconnect) // still draining: told to retry, and ended
  await waitUntil('sent away', () => clock.waits(reconnect))
  t.equal(sockets.size, 1, 'it came back to the draining instance once')
  await drained
  await deploy.stop()
  ids.push(...await publishIds(deploy.replica.url, [cancelled('a')]))
  await deploy.start()
  clock.fire(reconnect)
  await waitUntil('3 events', () => received.length === 3)
  t.same(received, ids, 'nothing lost or doubled')
})
