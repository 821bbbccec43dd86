// Rolling restart: two instances on Redis under steady publishing; each in turn gets SIGTERM (the
// balancer takes it out of rotation, as its failing readiness makes a real one do) and is replaced
// by a new process. Clients must move over with no loss and no duplicate, and their reconnections
// must spread over the drain window: the peak connect rate is compared with the same clients
// moving off an instance killed with SIGKILL, which has no drain.
import { waitUntil } from '../helpers/app.js'
import { REDIS_URL, redisEnv } from '../helpers/redis.js'
import { Instance } from './lib/instance.js'
import { logIds } from './lib/log.js'
import { SteadyPublisher } from './lib/publisher.js'
import { audit, Balancer, IdTable, ResumingClient, startClients } from './lib/resuming-client.js'
import { check, figure, peakInWindow, runScenario, size, sleep } from './lib/scenario.js'

const CLIENTS = size('ROLLING_CLIENTS', 400)
const RATE = size('ROLLING_RATE', 20)
const DRAIN_DELAY_MS = size('ROLLING_DRAIN_DELAY_MS', 1000)
const DRAIN_WINDOW_MS = size('ROLLING_DRAIN_WINDOW_MS', 5000)
/** Time after a stop for the clients to settle on the other instance, beyond the drain and the retry hint. */
const SETTLE_MS = 4000

await runScenario('rolling restart', 300_000, async cleanup => {
  const env = redisEnv(cleanup, { DRAIN_DELAY_MS: String(DRAIN_DELAY_MS), DRAIN_WINDOW_MS: String(DRAIN_WINDOW_MS) })
  const start = async (name: string): Promise<Instance> => await Instance.start(cleanup, name, env)
  const first = [await start('a'), await start('b')]
  const balancer = new Balancer(first.map(instance => instance.url))
  const ids = new IdTable()
  const clients = await startClients(CLIENTS, 50, index => new ResumingClient(ids, balancer, index % 2, 'all=true'))
  cleanup.teardown(() => clients.forEach(client => client.stop()))
  const publisher = new SteadyPublisher(balancer, RATE)
  publisher.start()
  await sleep(1000)

  /** Stops `instance` with `signal`; returns the times (ms) of the reconnections it caused, and its exit code. */
  const stop = async (instance: Instance, signal: NodeJS.Signals): Promise<{ times: number[], moved: number, code: number | null }> => {
    const began = Date.now()
    const leaving = clients.filter(client => client.target === instance.url)
    balancer.remove(instance.url)
    const code = await instance.kill(signal)
    await waitUntil(`the clients of ${instance.name} are back`, () => leaving.every(client => client.open && client.target !== instance.url), 60_000)
    await sleep(SETTLE_MS)
    const times = clients.flatMap(client => client.reopened).filter(open => open.at >= began).map(open => open.at)
    return { times, moved: leaving.length, code }
  }
  const replacement = async (name: string): Promise<Instance> => {
    const next = await start(name)
    balancer.add(next.url)
    return next
  }

  const termA = await stop(first[0]!, 'SIGTERM')
  const a2 = await replacement('a2')
  const termB = await stop(first[1]!, 'SIGTERM')
  const b2 = await replacement('b2')
  const killA2 = await stop(a2, 'SIGKILL')
  await publisher.stop()

  const expected = await logIds(cleanup, REDIS_URL, env.REDIS_PREFIX!)
  const last = ids.of(expected.at(-1)!)
  await waitUntil('every client has the last event', () =>
    clients.every(client => client.failure !== undefined || client.received.at(-1) === last), 30_000).catch(() => {})
  b2.assertAlive()

  const describe = (stopped: { times: number[], moved: number }): string =>
    `${stopped.moved} clients moved; peak ${peakInWindow(stopped.times, 1000)} connects in 1 s, ${peakInWindow(stopped.times, 100)} in 100 ms; ` +
    `spread over ${stopped.times.length === 0 ? 0 : Math.max(...stopped.times) - Math.min(...stopped.times)} ms`
  figure('SIGTERM a (drain)', describe(termA))
  figure('SIGTERM b (drain)', describe(termB))
  figure('SIGKILL a2 (no drain)', describe(killA2))
  figure('events', `${publisher.accepted.length} accepted at ${RATE}/s, ${expected.length} in the log; drain ${DRAIN_DELAY_MS} ms delay, ${DRAIN_WINDOW_MS} ms window`)

  const wrong = clients.map(client => client.failure ?? audit(client, expected).problem).filter(problem => problem !== undefined)
  check(wrong.length === 0, `${wrong.length} of ${CLIENTS} clients did not get every event once in order: ${wrong.slice(0, 5).join('; ')}`)
  const resyncs = clients.reduce((sum, client) => sum + client.resyncs.length, 0)
  check(resyncs === 0, `${resyncs} resyncs, where every event was still in the history`)
  check(termA.code === 0 && termB.code === 0, `a drained instance exited with ${termA.code} and ${termB.code}, not 0`)
  const drainedPeak = peakInWindow(termB.times, 1000)
  const killedPeak = peakInWindow(killA2.times, 1000)
  // Both moved every client; the drain spreads them over its window, the kill lets them come at once.
  check(drainedPeak * 2 <= killedPeak, `the drain did not spread the reconnections: peak ${drainedPeak}/s against ${killedPeak}/s without it`)
})
