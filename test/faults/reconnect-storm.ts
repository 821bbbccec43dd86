// Reconnect storm: two instances on Redis, clients spread over both; instance A is killed with
// SIGKILL while events are published at a steady rate, and A's clients reconnect to B with
// Last-Event-ID. Every client must end with every event of the log exactly once, in order.
import { waitUntil } from '../helpers/app.js'
import { REDIS_URL, redisEnv } from '../helpers/redis.js'
import { Instance } from './lib/instance.js'
import { logIds } from './lib/log.js'
import { SteadyPublisher } from './lib/publisher.js'
import { audit, Balancer, IdTable, ResumingClient, startClients } from './lib/resuming-client.js'
import { check, figure, peakInWindow, percentile, runScenario, size, sleep } from './lib/scenario.js'

const CLIENTS = size('STORM_CLIENTS', 500)
const RATE = size('STORM_RATE', 50)
const BEFORE_KILL_MS = size('STORM_BEFORE_KILL_MS', 2000)
const AFTER_KILL_MS = size('STORM_AFTER_KILL_MS', 8000)

await runScenario('reconnect storm', 300_000, async cleanup => {
  const env = redisEnv(cleanup)
  const a = await Instance.start(cleanup, 'a', env)
  const b = await Instance.start(cleanup, 'b', env)
  const balancer = new Balancer([a.url, b.url])
  const ids = new IdTable()
  const clients = await startClients(CLIENTS, 50, index => new ResumingClient(ids, balancer, index % 2, 'all=true'))
  cleanup.teardown(() => clients.forEach(client => client.stop()))
  figure('clients', `${CLIENTS} (${clients.filter(client => client.target === a.url).length} on a)`)

  const publisher = new SteadyPublisher(balancer, RATE)
  publisher.start()
  await sleep(BEFORE_KILL_MS)
  const killedAt = Date.now()
  await a.kill('SIGKILL')
  await sleep(AFTER_KILL_MS)
  await publisher.stop()

  const expected = await logIds(cleanup, REDIS_URL, env.REDIS_PREFIX!)
  const last = ids.of(expected.at(-1)!)
  await waitUntil('every client has the last event', () =>
    clients.every(client => client.failure !== undefined || client.received.at(-1) === last), 30_000).catch(() => {})
  b.assertAlive()

  const moved = clients.filter(client => client.home === 0)
  const reconnectMs = moved.flatMap(client => client.reconnectMs)
  const openedOnB = clients.flatMap(client => client.reopened).filter(open => open.target === b.url && open.at >= killedAt).map(open => open.at)
  const resyncs = clients.reduce((sum, client) => sum + client.resyncs.length, 0)
  figure('events published', `${publisher.accepted.length} accepted at ${RATE}/s, ${expected.length} in the log; ` +
    `${publisher.refusedConnections} refused connections, ${publisher.ambiguous} ambiguous attempts retried; ` +
    `publish latency p50 ${percentile(publisher.latencyMs, 0.5)} ms, p99 ${percentile(publisher.latencyMs, 0.99)} ms`)
  figure('reconnect time (loss to registered on b, the retry hint\'s wait included)',
    `p50 ${percentile(reconnectMs, 0.5)} ms, p99 ${percentile(reconnectMs, 0.99)} ms, max ${Math.max(...reconnectMs)} ms; retry hint ${moved[0]?.retryMs} ms`)
  figure('peak connect rate b absorbed', `${peakInWindow(openedOnB, 1000)} streams in 1 s, ${peakInWindow(openedOnB, 100)} in 100 ms`)
  figure('resyncs', resyncs)

  const wrong = clients.map(client => client.failure ?? audit(client, expected).problem).filter(problem => problem !== undefined)
  check(wrong.length === 0, `${wrong.length} of ${CLIENTS} clients did not get every event once in order: ${wrong.slice(0, 5).join('; ')}`)
  const inLog = new Set(expected)
  const lost = publisher.accepted.filter(id => !inLog.has(id))
  check(lost.length === 0, `${lost.length} accepted events are not in the log: ${lost.slice(0, 5).join(', ')}`)
  check(reconnectMs.length >= moved.length, `${moved.length - reconnectMs.length} of a's clients never reconnected`)
  check(resyncs === 0, `${resyncs} resyncs, where every event was still in the history`)
  check(openedOnB.length >= moved.length, 'a\'s clients did not all move to b')
})
