import t from 'tap'
import { publish, startApp, waitUntil, type RunningApp } from './helpers/app.js'
import { subscribe } from './helpers/sse-client.js'
import { PrivateRedis, redisAnswers, redisClient, redisEnv } from './helpers/redis.js'

// What another Redis client may write into the log's keys: nothing of it may stop a reader or a start-up.

type Test = Parameters<typeof redisEnv>[0]

const cancelled = (streamId: string) => ({ event: 'stream.cancelled', data: { streamId } })
/** The fields of one of our entries, with `prev` as given. */
const fields = (streamId: string, prev: string) =>
  ['event', 'stream.cancelled', 'data', JSON.stringify({ streamId }), 'stream', streamId, 'users', '', 'prev', prev]

async function publishIds (url: string, events: unknown[]): Promise<string[]> {
  const { status, body } = await publish(url, events)
  if (status !== 202) throw new Error(`publish failed: ${status} ${JSON.stringify(body)}`)
  return body.ids
}

async function instance (t: Test, env: Record<string, string>, name: string): Promise<RunningApp> {
  return await startApp(t, { ...env, INSTANCE_ID: name })
}

const skippedLines = (app: RunningApp) => app.logs.filter(line => typeof line.msg === 'string' && line.msg.startsWith('skipped a log entry'))

async function counters (app: RunningApp): Promise<{ stats: number, metrics: string }> {
  const stats = await (await fetch(`${app.url}/events/stats`)).json() as any
  const metrics = await (await fetch(`${app.url}/metrics`)).text()
  return { stats: stats.fanout.skippedLogEntries, metrics: /^sse_redis_log_entries_skipped_total (\d+)$/m.exec(metrics)?.[1] ?? 'absent' }
}

if (await redisAnswers(t)) {
  t.test('a flood of entries whose prev is not an event id: skipped, counted, logged once; streams resync once; delivery goes on', async t => {
    const env = redisEnv(t)
    const streamKey = `${env.REDIS_PREFIX}events`
    const a = await instance(t, env, 'a')
    const client = await subscribe(t, a.url, 'all=true')
    const [first] = await publishIds(a.url, [cancelled('f')])
    await client.eventCount(1)

    // More than one page of the reader's (1000 entries), in one transaction: the reader sees them together.
    const redis = redisClient(t)
    const flood = redis.multi()
    for (let i = 0; i < 1500; i++) flood.xadd(streamKey, '*', ...fields('f', 'not-an-id'))
    const written = (await flood.exec())!.map(([, id]) => id as string)
    const [after] = await publishIds(a.url, [cancelled('f')])
    const events = await client.eventCount(3)
    t.same(events.map(event => event.event), ['stream.cancelled', 'events.resync', 'stream.cancelled'])
    t.same(JSON.parse(events[1]!.data), { reason: 'gap', lastEventId: '' })
    t.equal(events[1]!.id, written.at(-1), 'the resync carries the last entry skipped: a resume from it misses nothing')
    t.equal(events[2]!.id, after, 'the event published after the flood is delivered')
    t.equal(a.app.broker.metrics.resyncs.gap, 1, 'one resync for the whole flood, not one per entry or per page')
    t.same(await counters(a), { stats: 1500, metrics: '1500' }, 'every entry counted')
    t.equal(skippedLines(a).length, 1, 'one log line, not one per entry')
    t.match(skippedLines(a)[0], { level: 40, id: written[0], key: streamKey, msg: /prev/ })
    t.notOk(a.logs.some(line => line.msg === 'reading the event log failed; trying again in a second'), 'the reader never failed')

    // An instance started now reads the same entries from the log at start-up.
    const late = await instance(t, env, 'late')
    t.same(await counters(late), { stats: 1500, metrics: '1500' })
    t.equal(skippedLines(late).length, 1)
    const stale = await subscribe(t, late.url, 'all=true', { 'last-event-id': first! })
    const [resync] = await stale.eventCount(1)
    t.equal(resync!.event, 'events.resync', 'a resume from before the broken chain cannot be shown to have missed nothing')
    t.equal(JSON.parse(resync!.data).reason, 'expired')
    const resumed = await subscribe(t, late.url, 'all=true', { 'last-event-id': written.at(-1)! })
    t.same((await resumed.eventCount(1)).map(event => event.id), [after], 'a resume from the resync\'s id replays what followed')
    const [live] = await publishIds(late.url, [cancelled('f')])
    t.equal((await client.eventCount(4))[3]!.id, live, 'publishing on the new instance reaches the old one')
  })

  t.test('an entry with an id beyond the event ids\' range is skipped; appends after it are refused, not lost', async t => {
    const env = redisEnv(t)
    const streamKey = `${env.REDIS_PREFIX}events`
    const a = await instance(t, env, 'a')
    const client = await subscribe(t, a.url, 'all=true')
    const [first] = await publishIds(a.url, [cancelled('h')])
    const redis = redisClient(t)
    // Redis takes any explicit id above the last, and gives every later entry a larger one still.
    await redis.xadd(streamKey, '99999999999999999-0', ...fields('h', first!))
    await redis.xadd(streamKey, '*', ...fields('h', 'not-an-id'))
    await waitUntil('both entries are skipped', async () => (await counters(a)).stats === 2)
    const refused = await publish(a.url, cancelled('h'))
    t.equal(refused.status, 503, 'a publish is refused rather than answered 202 and never delivered')
    t.match(refused.body, { error: 'redis_unavailable', message: /nothing was published/ })
    t.ok(a.logs.some(line => line.msg === 'publishing to the Redis log failed' && /beyond/.test(String((line.err as any)?.message))),
      'the log line says why')
    t.equal(await redis.xlen(streamKey), 3, 'nothing of the refused publish is left in the log')
    const events = await client.eventCount(2)
    t.same(events.map(event => event.event), ['stream.cancelled', 'events.resync'], 'the second entry broke the chain: a resync, nothing else')
    t.equal(events[1]!.id, first, 'carrying the newest event id there is')
    const late = await instance(t, env, 'late') // reads the same entries at start-up
    t.equal(late.app.fanout.skippedLogEntries, 2)
  })

  t.test('a trimmed-up-to that is not an event id is unknown: logged, and neither publishing nor start-up stops', async t => {
    const env = redisEnv(t)
    const trimmedKey = `${env.REDIS_PREFIX}trimmed-up-to`
    const a = await instance(t, env, 'a')
    const client = await subscribe(t, a.url, 'all=true')
    const redis = redisClient(t)
    await redis.set(trimmedKey, 'not-an-id')
    const [first] = await publishIds(a.url, [cancelled('t')])
    t.same((await client.eventCount(1)).map(event => event.id), [first], 'the first entry of an empty log does not take it as its prev')
    const late = await instance(t, env, 'late')
    t.ok(late.logs.some(line => line.level === 40 && line.key === trimmedKey && line.found === 'not-an-id'), 'logged at start-up')

    await redis.del(`${env.REDIS_PREFIX}events`)
    await redis.del(trimmedKey)
    await redis.hset(trimmedKey, 'not', 'a string')
    const later = await instance(t, env, 'later')
    t.ok(later.logs.some(line => line.level === 40 && line.key === trimmedKey && /WRONGTYPE/.test(String(line.found))), 'a key of another type too')
    const [second] = await publishIds(later.url, [cancelled('t')])
    const onLater = await subscribe(t, later.url, 'all=true', { 'last-event-id': second! })
    const [third] = await publishIds(a.url, [cancelled('t')])
    t.same((await onLater.eventCount(1)).map(event => event.id), [third])
    t.equal(await redis.type(trimmedKey), 'hash', 'left as it is: nothing was trimmed')
  })

  t.test('a log key of another type at start-up: the instance starts, says so, and reads the log once it is one', async t => {
    const env = redisEnv(t)
    const streamKey = `${env.REDIS_PREFIX}events`
    const redis = redisClient(t)
    await redis.set(streamKey, 'not a stream')
    const a = await instance(t, env, 'a')
    t.ok(a.logs.some(line => line.level === 40 && line.key === streamKey && /WRONGTYPE/.test(String(line.found))))
    const client = await subscribe(t, a.url, 'all=true')
    await redis.del(streamKey)
    const [id] = await publishIds(a.url, [cancelled('w')])
    // A reader that failed waits a second before it reads again.
    t.same((await client.eventCount(1, 10_000)).map(event => event.id), [id])
  })

  t.test('only a key of another type is read as absent: a Redis that refuses to read the log still stops start-up', async t => {
    const redis = await PrivateRedis.start(t)
    const admin = redisClient(t, redis.url)
    await admin.acl('SETUSER', 'no-xrange', 'on', '>a-password-for-tests', '~*', '&*', '+@all', '-xrange')
    const env = redisEnv(t, {}, `redis://no-xrange:a-password-for-tests@127.0.0.1:${redis.port}`)
    await t.rejects(instance(t, env, 'a'), /NOPERM/)
  })
}
