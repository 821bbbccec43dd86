// Soak: for SOAK_DURATION_MS, streams open and close, resume with Last-Event-ID (MAX_STREAM_AGE_MS
// ends them every few seconds), tokens expire under open streams (events.closing, then 401), and
// events are published all along. Memory must stay in a band, and once every client has left, file
// descriptors, streams and subscriptions must be back where they began. The clients that stayed
// must have every event once, in order.
import { signJwt, nowS } from '../helpers/jwt.js'
import { publish, waitUntil } from '../helpers/app.js'
import { Instance } from './lib/instance.js'
import { audit, Balancer, compareIds, IdTable, ResumingClient, startClients } from './lib/resuming-client.js'
import { MAX_IN_FLIGHT, SteadyPublisher } from './lib/publisher.js'
import { check, figure, mib, runScenario, size, sleep } from './lib/scenario.js'

const DURATION_MS = size('SOAK_DURATION_MS', 45_000)
const STAYERS = size('SOAK_STAYING_CLIENTS', 20)
const CHURNERS = size('SOAK_CHURNING_CLIENTS', 10)
const EXPIRING = size('SOAK_EXPIRING_CLIENTS', 5)
const RATE = size('SOAK_EVENTS_PER_SECOND', 20)
const SECRET = 'soak-test-secret-of-at-least-32-characters'
const key = { alg: 'HS256', secret: SECRET } as const
const token = (lifetimeS: number, scope: string): string => signJwt({ sub: 'soak', scope, exp: nowS() + lifetimeS }, key)

await runScenario('soak', DURATION_MS + 180_000, async cleanup => {
  const server = await Instance.start(cleanup, 'soak', {
    AUTH_MODE: 'jwt', JWT_SECRET: SECRET, JWT_CLOCK_TOLERANCE_S: '0', RETRY_MS: '300', MAX_STREAM_AGE_MS: '5000', HEARTBEAT_MS: '1000'
  })
  const balancer = new Balancer([server.url])
  const ids = new IdTable()
  const subscriptions = async (): Promise<number> =>
    Object.values((await server.stats()).connections.byFilter as Record<string, number>).reduce((sum, count) => sum + count, 0)
  const publishToken = token(DURATION_MS / 1000 + 600, 'events:publish')
  // The baseline counts the probes' own keep-alive connections (stats, metrics, publish) as well.
  check((await publish(server.url, { event: 'stream.cancelled', data: { streamId: 'warm-up' } }, { authorization: `Bearer ${publishToken}` })).status === 202, 'warm-up publish refused')
  await subscriptions()
  const fdsBefore = await server.fds()
  const live = (lifetimeS: number): ResumingClient =>
    new ResumingClient(ids, balancer, 0, `all=true&access_token=${token(lifetimeS, 'events:all')}`)

  const publisher = new SteadyPublisher(balancer, RATE, { authorization: `Bearer ${publishToken}` })
  const stayers = await startClients(STAYERS, 10, () => live(DURATION_MS / 1000 + 600))
  cleanup.teardown(() => stayers.forEach(client => client.stop()))
  publisher.start()
  const began = Date.now()
  const running = (): boolean => Date.now() - began < DURATION_MS
  let churned = 0
  let expired = 0
  /** Clients that come and go: each stays up to 2 s, then leaves. */
  const churn = async (): Promise<void> => {
    while (running()) {
      const client = live(600)
      await client.start()
      await sleep(Math.random() * 2000)
      client.stop()
      churned++
    }
  }
  /** Clients whose token expires under the open stream: the service ends it, the retry is refused. */
  const expire = async (): Promise<void> => {
    while (running()) {
      const client = live(2)
      await client.start()
      await waitUntil('the expired token\'s stream ends', () => client.failure !== undefined, 30_000)
      client.stop()
      expired++
    }
  }
  const rss: number[] = []
  const heap: number[] = []
  const sample = async (): Promise<void> => {
    while (running()) {
      rss.push(await server.rss())
      heap.push(await server.metric('nodejs_heap_size_used_bytes'))
      await sleep(1000)
    }
  }
  await Promise.all([sample(), ...Array.from({ length: CHURNERS }, churn), ...Array.from({ length: EXPIRING }, expire)])
  await publisher.stop()
  const published = publisher.accepted.sort(compareIds)
  const last = ids.of(published.at(-1)!)
  await waitUntil('every staying client has the last event',
    () => stayers.every(client => client.failure !== undefined || client.received.at(-1) === last), 60_000)
  const wrong = stayers.map(client => client.failure ?? audit(client, published).problem).filter(problem => problem !== undefined)
  const resumes = stayers.reduce((sum, client) => sum + client.reopened.length, 0)
  stayers.forEach(client => client.stop())

  await waitUntil('every stream is gone', async () => (await server.stats()).connections.active === 0, 30_000)
  // The publisher's fetch pool keeps up to MAX_IN_FLIGHT idle keep-alive connections open (for the
  // server's 72 s keep-alive timeout): those are the test's, not leaks; a leak per client is hundreds.
  const fdsAllowed = fdsBefore + MAX_IN_FLIGHT
  let fdsAfter = await server.fds()
  await waitUntil('file descriptors are back', async () => (fdsAfter = await server.fds()) <= fdsBefore, 10_000).catch(() => {})
  const stats = await server.stats()
  const subscriptionsAfter = await subscriptions()
  server.assertAlive()

  // The band: after the first quarter (warm-up), the last quarter's peak stays near the second quarter's.
  const quarter = Math.floor(rss.length / 4)
  const peak = (values: number[], from: number, to: number): number => Math.max(...values.slice(from, to))
  const [rssEarly, rssLate] = [peak(rss, quarter, 2 * quarter), peak(rss, 3 * quarter, rss.length)]
  const [heapEarly, heapLate] = [peak(heap, quarter, 2 * quarter), peak(heap, 3 * quarter, heap.length)]
  figure('duration', `${DURATION_MS} ms, ${published.length} events published at ${RATE}/s`)
  figure('clients', `${STAYERS} stayed (${resumes} resumes with Last-Event-ID), ${churned} came and went, ${expired} token expiries`)
  figure('closed', Object.entries(stats.connections.closed as Record<string, number>).filter(([, count]) => count > 0).map(([reason, count]) => `${reason} ${count}`).join(', '))
  figure('RSS', `peak ${mib(rssEarly)} in the 2nd quarter, ${mib(rssLate)} in the 4th`)
  figure('heap used', `peak ${mib(heapEarly)} in the 2nd quarter, ${mib(heapLate)} in the 4th`)
  figure('after everyone left', `fds ${fdsAfter} (before ${fdsBefore}), streams ${stats.connections.active}, subscriptions ${subscriptionsAfter}, buffered ${stats.bufferedBytes} B`)
  check(wrong.length === 0, `${wrong.length} of ${STAYERS} staying clients lost, doubled or reordered events: ${wrong.slice(0, 5).join('; ')}`)
  check(resumes > 0, 'no staying client resumed')
  check(expired > 0 && (stats.connections.closed.token_expired as number) >= expired, 'token expiries did not end streams')
  check(fdsAfter <= fdsAllowed, `file descriptors ${fdsAfter}, were ${fdsBefore} (+${MAX_IN_FLIGHT} for the publisher's pool)`)
  check(subscriptionsAfter === 0 && stats.bufferedBytes === 0, 'subscriptions or buffers left behind')
  check(rssLate <= rssEarly * 1.25 + 16 * 1048576, `RSS grew from ${mib(rssEarly)} to ${mib(rssLate)}`)
  check(heapLate <= heapEarly * 1.25 + 16 * 1048576, `heap grew from ${mib(heapEarly)} to ${mib(heapLate)}`)
})
