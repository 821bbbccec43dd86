// Hostile input: one instance with JWT auth on Redis takes a generated corpus of malformed requests
// (raw sockets), malformed channel messages and foreign log entries, round after round, while a
// valid subscriber and publisher carry on. Every request must get a 4xx with a JSON body (or, a
// resume from an odd id, a stream), every channel message and foreign entry be dropped and counted,
// the process live, its memory and descriptors back in a band, and the subscriber get every valid
// event once, in order.
import { nowS, signJwt } from '../helpers/jwt.js'
import { waitUntil } from '../helpers/app.js'
import { REDIS_URL, redisClient, redisEnv } from '../helpers/redis.js'
import { foreignLogEntries, hostileCorpus, malformedChannelMessages } from './lib/hostile-corpus.js'
import { Instance } from './lib/instance.js'
import { SteadyPublisher } from './lib/publisher.js'
import { rawRequest } from './lib/raw-http.js'
import { audit, Balancer, IdTable, ResumingClient } from './lib/resuming-client.js'
import { check, figure, mib, runScenario, size } from './lib/scenario.js'

const ROUNDS = size('HOSTILE_ROUNDS', 3)
const CONCURRENCY = size('HOSTILE_CONCURRENCY', 32)
const SECRET = 'faults-hostile-input-secret-of-at-least-32-chars'

await runScenario('hostile input', 600_000, async cleanup => {
  const env = redisEnv(cleanup, { AUTH_MODE: 'jwt', JWT_SECRET: SECRET })
  const instance = await Instance.start(cleanup, 'a', env)
  const port = Number(new URL(instance.url).port)
  const token = signJwt({ sub: 'faults', scope: 'events:all events:publish', exp: nowS() + 3600 }, { alg: 'HS256', secret: SECRET })
  const balancer = new Balancer([instance.url])
  const ids = new IdTable()
  const subscriber = new ResumingClient(ids, balancer, 0, `all=true&access_token=${token}`)
  await subscriber.start()
  cleanup.teardown(() => subscriber.stop())
  const publisher = new SteadyPublisher(balancer, 20, { authorization: `Bearer ${token}` })
  publisher.start()

  const corpus = hostileCorpus(SECRET, token, token)
  const redis = redisClient(cleanup, REDIS_URL)
  const statuses = new Map<number, number>()
  const wrong: string[] = []
  let sent = 0
  let streams = 0
  const samples: Array<{ rss: number, heap: number, fds: number }> = []
  const sample = async (): Promise<void> => {
    samples.push({ rss: await instance.rss(), heap: await instance.metric('nodejs_heap_size_used_bytes'), fds: await instance.fds() })
  }
  await sample()
  const before = await instance.stats()

  for (let round = 0; round < ROUNDS; round++) {
    let next = 0
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      while (next < corpus.length) {
        const { family, raw } = corpus[next++]!
        const answer = await rawRequest(port, raw)
        sent++
        statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1)
        if (answer.status === 200 && answer.contentType.startsWith('text/event-stream')) { streams++; continue }
        const jsonBody = (() => { try { JSON.parse(answer.body); return answer.contentType.includes('json') } catch { return false } })()
        const problem = answer.hung ? 'no answer' : answer.status === 0 ? undefined : answer.status < 400 || answer.status >= 500 || !jsonBody ? `${answer.status} ${answer.body.slice(0, 80)}` : undefined
        if (problem !== undefined && wrong.length < 20) wrong.push(`${family} ${Buffer.from(raw).toString('latin1').slice(0, 60).replace(/\r\n/g, '⏎')}: ${problem}`)
      }
    }))
    for (const message of malformedChannelMessages()) await redis.publish(env.REDIS_CHANNEL!, message)
    for (const fields of foreignLogEntries()) await redis.xadd(`${env.REDIS_PREFIX!}events`, '*', ...fields)
    instance.assertAlive()
    await sample()
  }
  const channelSent = ROUNDS * malformedChannelMessages().length
  const foreignSent = ROUNDS * foreignLogEntries().length
  await waitUntil('malformed channel messages and foreign entries counted', async () => {
    const stats = await instance.stats()
    return stats.fanout.channelMessages.malformed - before.fanout.channelMessages.malformed >= channelSent &&
      stats.fanout.skippedLogEntries - before.fanout.skippedLogEntries >= foreignSent
  }, 30_000).catch(() => {})
  await publisher.stop()
  const last = ids.of(publisher.accepted.at(-1)!)
  await waitUntil('the subscriber has the last event', () => subscriber.received.at(-1) === last, 30_000).catch(() => {})
  subscriber.stop()
  await waitUntil('connections back to 0', async () => (await instance.stats()).connections.active === 0, 30_000).catch(() => {})
  const after = await instance.stats()
  await sample()
  instance.assertAlive()

  const first = samples[0]!
  const end = samples.at(-1)!
  figure('requests', `${sent} (${corpus.length} a round × ${ROUNDS}), statuses ${[...statuses].sort().map(([status, n]) => `${status}: ${n}`).join(', ')}; ${streams} streams opened (resume from an odd id)`)
  figure('channel messages', `${channelSent} malformed sent, ${after.fanout.channelMessages.malformed - before.fanout.channelMessages.malformed} counted malformed, ${after.fanout.channelMessages.bridged - before.fanout.channelMessages.bridged} bridged`)
  figure('foreign log entries', `${foreignSent} written, ${after.fanout.skippedLogEntries - before.fanout.skippedLogEntries} skipped and counted`)
  figure('process', `rss ${mib(first.rss)} → ${mib(end.rss)} (max ${mib(Math.max(...samples.map(s => s.rss)))}), heap ${mib(first.heap)} → ${mib(end.heap)}, fds ${first.fds} → ${end.fds}`)
  figure('valid traffic', `${publisher.accepted.length} events published, ${subscriber.received.length} received, ${subscriber.resyncs.length} resyncs (${subscriber.resyncs.map(r => r.reason).join(', ')})`)

  check(sent >= 2000, `only ${sent} requests`)
  check(wrong.length === 0, `answers that are not a 4xx with a JSON body: ${wrong.join('; ')}`)
  check(after.fanout.channelMessages.malformed - before.fanout.channelMessages.malformed === channelSent, 'malformed channel messages not all counted')
  check(after.fanout.skippedLogEntries - before.fanout.skippedLogEntries >= foreignSent, 'foreign log entries not all counted')
  check(after.connections.active === 0, `${after.connections.active} connections left`)
  check(end.fds <= first.fds + 5, `descriptors ${first.fds} → ${end.fds}`)
  check(end.rss < first.rss + 64 * 1048576, `rss grew ${mib(end.rss - first.rss)}`)
  const result = audit(subscriber, publisher.accepted)
  check(subscriber.failure === undefined && result.problem === undefined, `valid subscriber: ${subscriber.failure ?? result.problem}`)
})
