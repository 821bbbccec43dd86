import t from 'tap'
import { publish, randomAccountId, startApp, waitUntil, type RunningApp } from './helpers/app.js'
import { subscribe, type StreamClient } from './helpers/sse-client.js'
import { redisAnswers, redisClient, redisEnv } from './helpers/redis.js'
import { nowS, signJwt } from './helpers/jwt.js'

type Test = Parameters<typeof redisEnv>[0]

const cancelled = (streamId: string) => ({ event: 'stream.cancelled', data: { streamId } })
const created = (id: string, sender = randomAccountId(), recipient = randomAccountId()) =>
  ({ id, sender, recipient, amount: '100', ratePerSecond: '1', startTime: 1_700_000_000 })
const idsOf = (events: StreamClient['events']) => events.map(e => e.id)

async function publishIds (url: string, events: unknown[]): Promise<string[]> {
  const { status, body } = await publish(url, events)
  if (status !== 202) throw new Error(`publish failed: ${status} ${JSON.stringify(body)}`)
  return body.ids
}

interface Cluster {
  apps: RunningApp[]
  env: Record<string, string>
  /** The event log's key. */
  streamKey: string
  /** The legacy pub/sub channel, of this test's own. */
  channel: string
}

/** Instances on one Redis, under a key prefix of the test's own. */
async function cluster (t: Test, count: number, env: Record<string, string> = {}): Promise<Cluster> {
  const shared = redisEnv(t, env)
  const apps: RunningApp[] = []
  for (let i = 0; i < count; i++) apps.push(await startApp(t, { ...shared, INSTANCE_ID: `i${i}` }))
  return { apps, env: shared, streamKey: `${shared.REDIS_PREFIX}events`, channel: shared.REDIS_CHANNEL! }
}

if (await redisAnswers(t)) {
  t.test('an event published over HTTP on one instance reaches every instance, with one id', async t => {
    const { apps: [a, b, c] } = await cluster(t, 3)
    const onB = await subscribe(t, b!.url, 'streams=s1')
    const onC = await subscribe(t, c!.url, 'streams=s1')
    const onA = await subscribe(t, a!.url, 'all=true')
    const ids = await publishIds(a!.url, [cancelled('s1'), cancelled('s2'), cancelled('s1')])
    t.match(ids[0], /^\d+-\d+$/, 'ids are the Redis stream\'s')
    t.same(idsOf(await onB.eventCount(2)), [ids[0], ids[2]], 'B: its stream\'s events, with the ids A answered')
    t.same(idsOf(await onC.eventCount(2)), [ids[0], ids[2]], 'C: the same ids')
    t.same(idsOf(await onA.eventCount(3)), ids, 'A delivers what it published through the log too')
    t.same(JSON.parse(onB.events[0]!.data), { streamId: 's1' })
    t.equal(onB.events[0]!.event, 'stream.cancelled')
  })

  t.test('the seed\'s publisher: redis.publish on the channel reaches every instance, logged once', async t => {
    const { apps: [a, b], streamKey, channel } = await cluster(t, 2)
    await waitUntil('an instance holds the bridge lease', () => a!.app.fanout.bridging || b!.app.fanout.bridging)
    t.not(a!.app.fanout.bridging, b!.app.fanout.bridging, 'one instance bridges, not both')
    const onA = await subscribe(t, a!.url, 'streams=42')
    const onB = await subscribe(t, b!.url, 'streams=42')
    const redis = redisClient(t)
    const stream = created('42')
    // Exactly as the FlowFi backend publishes.
    await redis.publish(channel, JSON.stringify({ event: 'stream.created', data: stream }))
    await onA.eventCount(1)
    await onB.eventCount(1)
    t.equal(onA.events[0]!.event, 'stream.created')
    t.equal(onA.events[0]!.id, onB.events[0]!.id, 'the same id on both')
    t.same(JSON.parse(onB.events[0]!.data), stream)
    t.equal(await redis.xlen(streamKey), 1, 'logged once, though two instances listen')
    await waitUntil('the append is answered', () => a!.app.fanout.channelMessages.bridged + b!.app.fanout.channelMessages.bridged === 1)
    t.equal(a!.app.fanout.channelMessages.bridged + b!.app.fanout.channelMessages.bridged, 1)
  })

  t.test('malformed channel messages are logged, counted and dropped; the next good one goes through', async t => {
    const { apps: [a], channel } = await cluster(t, 1)
    await waitUntil('the instance bridges', () => a!.app.fanout.bridging)
    const client = await subscribe(t, a!.url, 'streams=7')
    const redis = redisClient(t)
    await redis.publish(channel, '{not json')
    await redis.publish(channel, JSON.stringify({ event: 'stream.exploded', data: { streamId: '7' } }))
    await redis.publish(channel, JSON.stringify({ event: 'stream.cancelled', data: { streamId: '7' } }))
    await client.eventCount(1)
    t.equal(client.events.length, 1)
    // Counted when Redis answers the append, which may come after the reader has delivered the event.
    await waitUntil('the append is answered', () => a!.app.fanout.channelMessages.bridged === 1)
    t.same(a!.app.fanout.channelMessages, { bridged: 1, malformed: 2, failed: 0 })
    const warnings = a!.logs.filter(line => line.channel === channel && line.level === 40)
    t.same(warnings.map(line => line.msg), ['channel message is not JSON; dropped', 'channel message is not a valid event; dropped'])
    t.equal(warnings[0]!.message, '{not json', 'the message itself is logged (cut at 200 characters)')
    const metrics = await (await fetch(`${a!.url}/metrics`)).text()
    t.match(metrics, /sse_channel_messages_total\{result="malformed"\} 2/)
    t.match(metrics, /sse_redis_up 1/)
  })

  t.test('resume on another instance: exactly the missed events, in order, then live', async t => {
    const { apps: [a, b] } = await cluster(t, 2)
    const onA = await subscribe(t, a!.url, 'streams=r')
    const [first] = await publishIds(a!.url, [cancelled('r')])
    await onA.eventCount(1)
    onA.close()
    const missed = await publishIds(b!.url, [cancelled('r'), cancelled('other'), cancelled('r')])
    const onB = await subscribe(t, b!.url, 'streams=r', { 'last-event-id': first! })
    t.same(idsOf(await onB.eventCount(2)), [missed[0], missed[2]])
    const [live] = await publishIds(a!.url, [cancelled('r')])
    t.equal((await onB.eventCount(3))[2]!.id, live)
    t.equal(onB.events.length, 3, 'nothing twice')
  })

  t.test('an instance started later loads the log: resume there works, and resync when the id is older than the log', async t => {
    const { apps: [a], env, streamKey } = await cluster(t, 1, { HISTORY_SIZE: '3', MAX_PUBLISH_BATCH: '3' })
    const ids = [...await publishIds(a!.url, [1, 2, 3].map(n => cancelled(`s${n}`))), ...await publishIds(a!.url, [4, 5].map(n => cancelled(`s${n}`)))]
    const redis = redisClient(t)
    t.equal(await redis.xlen(streamKey), 3, 'the log keeps HISTORY_SIZE entries')
    const late = await startApp(t, { ...env, INSTANCE_ID: 'late' })
    const resumed = await subscribe(t, late.url, 'all=true', { 'last-event-id': ids[1]! })
    t.same(idsOf(await resumed.eventCount(3)), ids.slice(2), 'from the trimmed-up-to id: nothing missed')
    const stale = await subscribe(t, late.url, 'all=true', { 'last-event-id': ids[0]! })
    const [resync] = await stale.eventCount(1)
    t.equal(resync!.event, 'events.resync')
    t.same(JSON.parse(resync!.data), { reason: 'expired', lastEventId: ids[0] })
    t.equal(resync!.id, ids[4], 'the resync carries the newest id')
    t.same(((await (await fetch(`${late.url}/events/stats`)).json()) as any).history.events, 3)
  })

  t.test('a resume from an id this instance has not read yet waits for its reader', async t => {
    const { apps: [a], streamKey } = await cluster(t, 1)
    const redis = redisClient(t)
    // An entry appended straight to the log, as if by an instance whose reader is ahead of ours.
    const ahead = await redis.xadd(streamKey, '*', 'event', 'stream.cancelled', 'data', '{"streamId":"w"}', 'stream', 'w', 'users', '', 'prev', '0-0') as string
    const client = await subscribe(t, a!.url, 'streams=w', { 'last-event-id': ahead })
    const [live] = await publishIds(a!.url, [cancelled('w')])
    t.same(idsOf(await client.eventCount(1)), [live], 'no resync and no replay of the entry it had')
    const future = await subscribe(t, a!.url, 'streams=w', { 'last-event-id': '99999999999999-0' })
    const [resync] = await future.eventCount(1)
    t.equal(resync!.event, 'events.resync', 'an id from far beyond any clock is resynced at once')
    t.equal(JSON.parse(resync!.data).reason, 'unknown_id')

    // An id a little ahead that never comes: this instance's reader is behind the client's.
    const soon = `${Date.now() + 5000}-0`
    const behind = await subscribe(t, a!.url, 'streams=w', { 'last-event-id': soon })
    await behind.until('the stream ends after the wait', () => behind.ended, 5000)
    t.equal(behind.raw, 'retry: 3000\n\n', 'nothing but the retry hint: it comes back with its id, rather than resyncing to ours')
    t.equal(a!.app.broker.metrics.closes.reader_behind, 1)
    const gone = await subscribe(t, a!.url, 'streams=w', { 'last-event-id': soon })
    gone.close()
    await waitUntil('a stream that left during the wait is forgotten', () => a!.app.broker.size === 2)
    t.equal(a!.app.broker.metrics.resyncs.unknown_id, 1, 'and is sent nothing')
  })

  t.test('log entries that are not ours are skipped, logged once per kind; a broken chain of prev ids is a gap', async t => {
    const { apps: [a], streamKey } = await cluster(t, 1)
    const client = await subscribe(t, a!.url, 'all=true')
    const redis = redisClient(t)
    // Neither names a prev: what came before them cannot be shown to be complete.
    const written = await redis.multi()
      .xadd(streamKey, '*', 'event', 'stream.exploded', 'data', '{}', 'stream', 'z', 'users', '')
      .xadd(streamKey, '*', 'hello', 'world')
      .exec()
    const strange = written![0]![1]
    const [good] = await publishIds(a!.url, [cancelled('z')])
    const [resync, event] = await client.eventCount(2)
    t.equal(resync!.event, 'events.resync')
    t.same(JSON.parse(resync!.data), { reason: 'gap', lastEventId: '' })
    t.equal(event!.id, good)
    // One that names the entry before it as its prev, but has no users: skipped, and the chain holds.
    await redis.xadd(streamKey, '*', 'event', 'stream.cancelled', 'data', '{"streamId":"z"}', 'stream', 'z', 'prev', good!)
    const [next] = await publishIds(a!.url, [cancelled('z')])
    t.same(idsOf(await client.eventCount(3)), [resync!.id, good, next], 'no second resync')
    t.equal(a!.app.fanout.skippedLogEntries, 3)
    const skipped = a!.logs.filter(line => typeof line.msg === 'string' && line.msg.startsWith('skipped a log entry'))
    t.equal(skipped.length, 2, 'a line for each kind of problem, not for each entry')
    t.equal(skipped[0]!.id, strange)
    t.ok(a!.logs.some(line => line.level === 50 && line.msg === 'a log entry that is not ours broke the chain of prev ids: streams are told to resync'))
  })

  t.test('a clobbered log key: publishing answers 503 and the reader retries until it is a stream again', async t => {
    const { apps: [a], streamKey } = await cluster(t, 1)
    const client = await subscribe(t, a!.url, 'all=true')
    const redis = redisClient(t)
    await redis.set(streamKey, 'not a stream')
    const refused = await publish(a!.url, cancelled('c'))
    t.equal(refused.status, 503)
    t.equal(refused.body.error, 'redis_unavailable')
    // A blocked XREAD sees the change only when its block (5 s) times out.
    await waitUntil('the reader reports its failure', () => a!.logs.some(line => line.msg === 'reading the event log failed; trying again in a second'), 10_000)
    t.ok(a!.logs.some(line => line.msg === 'publishing to the Redis log failed' && /WRONGTYPE/.test(String((line.err as any)?.message))))
    await redis.del(streamKey)
    const [id] = await publishIds(a!.url, [cancelled('c')])
    t.same(idsOf(await client.eventCount(1, 5000)), [id])
  })

  t.test('routing by user uses the participants in Redis, also for streams created while an instance was down', async t => {
    const { apps: [a], env } = await cluster(t, 1)
    const sender = randomAccountId()
    await publishIds(a!.url, [{ event: 'stream.created', data: created('77', sender) }])
    const b = await startApp(t, { ...env, INSTANCE_ID: 'b' })
    const client = await subscribe(t, b.url, `users=${sender}`)
    const [withdrawn] = await publishIds(a!.url, [{ event: 'stream.withdrawn', data: { streamId: '77', amount: '5' } }])
    t.same(idsOf(await client.eventCount(1)), [withdrawn])
    const redis = redisClient(t)
    const ttl = await redis.ttl(`${env.REDIS_PREFIX}participants:77`)
    t.ok(ttl > 0 && ttl <= 30 * 86400, `the participants expire (TTL ${ttl} s)`)
  })

  t.test('with AUTH_MODE=jwt a stream is the account\'s own when Redis says it takes part', async t => {
    const secret = 'an-hs256-secret-that-is-long-enough-for-tests'
    const { apps: [a] } = await cluster(t, 1, { AUTH_MODE: 'jwt', JWT_SECRET: secret, PUBLISH_TOKEN: 'a-publish-token-for-tests' })
    const sender = randomAccountId()
    const { status } = await publish(a!.url, { event: 'stream.created', data: created('88', sender) }, { authorization: 'Bearer a-publish-token-for-tests' })
    t.equal(status, 202)
    const token = signJwt({ sub: sender, exp: nowS() + 60 }, { alg: 'HS256', secret })
    t.equal((await subscribe(t, a!.url, 'streams=88', { authorization: `Bearer ${token}` })).status, 200)
    const other = await fetch(`${a!.url}/events/subscribe?streams=89`, { headers: { authorization: `Bearer ${token}` } })
    t.equal(other.status, 403)
    t.same(await other.json(), { error: 'forbidden', message: 'this token may not subscribe to streams=89' })
    // A service token names its streams and has no account: nothing to look up.
    const service = signJwt({ streams: ['88'], exp: nowS() + 60 }, { alg: 'HS256', secret })
    t.equal((await subscribe(t, a!.url, 'streams=88', { authorization: `Bearer ${service}` })).status, 200)
    const refused = await fetch(`${a!.url}/events/subscribe?streams=89`, { headers: { authorization: `Bearer ${service}` } })
    t.equal(refused.status, 403)
    await refused.body?.cancel()
  })

  t.test('retention: MAXLEN from HISTORY_SIZE and MINID from HISTORY_MAX_AGE_MS', async t => {
    const { apps: [a], streamKey } = await cluster(t, 1, { HISTORY_SIZE: '5', MAX_PUBLISH_BATCH: '5', HISTORY_MAX_AGE_MS: '1000' })
    const redis = redisClient(t)
    for (let batch = 0; batch < 4; batch++) await publishIds(a!.url, Array.from({ length: 5 }, (_, n) => cancelled(`s${batch}-${n}`)))
    t.equal(await redis.xlen(streamKey), 5, 'count bound')
    await new Promise(resolve => setTimeout(resolve, 1100))
    const [fresh] = await publishIds(a!.url, [cancelled('new')])
    const left = await redis.xrange(streamKey, '-', '+')
    t.same(left.map(([id]) => id), [fresh], 'age bound: the older entries are gone')
  })

  t.test('stats and readiness report the Redis side', async t => {
    const { apps: [a] } = await cluster(t, 1)
    await waitUntil('the instance bridges', () => a!.app.fanout.bridging)
    const [id] = await publishIds(a!.url, [cancelled('x')])
    await waitUntil('the reader has the event', () => a!.app.fanout.lastId === id)
    const stats = await (await fetch(`${a!.url}/events/stats`)).json() as any
    t.same(stats.fanout, { mode: 'redis', redis: 'up', bridging: true, lastId: id, channelMessages: { bridged: 0, malformed: 0, failed: 0 }, skippedLogEntries: 0 })
    t.equal(stats.trackedStreams, null, 'participants live in Redis, not counted here')
    t.same(await (await fetch(`${a!.url}/readyz`)).json(), { status: 'ready', redis: 'up' })
  })
}
