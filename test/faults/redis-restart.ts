// Redis restart: a redis-server of the scenario's own (no persistence: it comes back empty, the
// hardest case) is killed and started again while events are published over HTTP, the 503s of the
// outage retried. Every accepted event must reach every subscriber once, in order, except where the
// subscriber was told in band (`events.resync`) that continuity could not be proven.
import { waitUntil } from '../helpers/app.js'
import { PrivateRedis, redisEnv } from '../helpers/redis.js'
import { Instance } from './lib/instance.js'
import { SteadyPublisher } from './lib/publisher.js'
import { audit, Balancer, compareIds, IdTable, ResumingClient, startClients } from './lib/resuming-client.js'
import { check, figure, percentile, runScenario, size, sleep } from './lib/scenario.js'

const CLIENTS = size('RESTART_CLIENTS', 200)
const RATE = size('RESTART_RATE', 50)
const RESTARTS = size('RESTART_TIMES', 2)
const PHASE_MS = size('RESTART_PHASE_MS', 3000)
const OUTAGE_MS = size('RESTART_OUTAGE_MS', 2000)

await runScenario('redis restart', 300_000, async cleanup => {
  const redis = await PrivateRedis.start(cleanup)
  const env = redisEnv(cleanup, {}, redis.url)
  const instances = [await Instance.start(cleanup, 'a', env), await Instance.start(cleanup, 'b', env)]
  const balancer = new Balancer(instances.map(instance => instance.url))
  const ids = new IdTable()
  const clients = await startClients(CLIENTS, 50, index => new ResumingClient(ids, balancer, index % 2, 'all=true'))
  cleanup.teardown(() => clients.forEach(client => client.stop()))
  const redisUp = async (): Promise<boolean> =>
    (await Promise.all(instances.map(instance => instance.metric('sse_redis_up')))).every(up => up === 1)

  const publisher = new SteadyPublisher(balancer, RATE)
  publisher.start()
  const outages: number[] = []
  for (let restart = 0; restart < RESTARTS; restart++) {
    await sleep(PHASE_MS)
    const began = Date.now()
    await redis.kill()
    await sleep(OUTAGE_MS)
    await redis.restart()
    await waitUntil('both instances are back on Redis', redisUp, 20_000)
    outages.push(Date.now() - began)
  }
  await sleep(PHASE_MS)
  await publisher.stop()

  const expected = [...publisher.accepted].sort(compareIds)
  const last = ids.of(expected.at(-1)!)
  await waitUntil('every client has the last event', () =>
    clients.every(client => client.failure !== undefined || client.received.at(-1) === last), 30_000).catch(() => {})
  instances.forEach(instance => instance.assertAlive())

  const audits = clients.map(client => audit(client, expected, publisher.ambiguous))
  const resyncs = clients.map(client => client.resyncs.length)
  const reasons = new Set(clients.flatMap(client => client.resyncs.map(resync => resync.reason)))
  const reopened = clients.reduce((sum, client) => sum + client.reopened.length, 0)
  figure('outages', `${RESTARTS} kills of redis-server, back empty; from kill to both instances up: ${outages.join(', ')} ms`)
  figure('events', `${publisher.accepted.length} accepted at ${RATE}/s; ${publisher.refused503} answered 503 and retried, ` +
    `${publisher.ambiguous} attempts of unknown outcome retried`)
  figure('resyncs per client', `min ${Math.min(...resyncs)}, max ${Math.max(...resyncs)} (reasons: ${[...reasons].join(', ')})`)
  figure('accepted events a client missed and was told of by a resync', `${audits.reduce((sum, a) => sum + a.resynced, 0)} in all, ` +
    `p99 ${percentile(audits.map(a => a.resynced), 0.99)} per client`)
  figure('events received twice for one publish (an ambiguous request retried)', audits.reduce((sum, a) => sum + a.unexpected, 0))
  figure('streams that had to reconnect', reopened)

  const wrong = clients.map((client, at) => client.failure ?? audits[at]!.problem).filter(problem => problem !== undefined)
  check(wrong.length === 0, `${wrong.length} of ${CLIENTS} clients lost, doubled or reordered events: ${wrong.slice(0, 5).join('; ')}`)
  check(Math.min(...resyncs) >= RESTARTS, `a client was not told to resync after each of the ${RESTARTS} restarts (min ${Math.min(...resyncs)})`)
  check(publisher.otherStatuses.size === 0, `publish answered ${JSON.stringify([...publisher.otherStatuses])}`)
})
