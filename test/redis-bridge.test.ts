import t from 'tap'
import { publish, startApp, waitUntil } from './helpers/app.js'
import { subscribe } from './helpers/sse-client.js'
import { PrivateRedis, redisAnswers, redisClient, redisEnv } from './helpers/redis.js'
import { runEntry } from './helpers/process.js'
import { RedisEventLog } from '../services/redis/redis-event-log.js'

const cancelled = (streamId: string) => ({ event: 'stream.cancelled' as const, data: { streamId } })

if (await redisAnswers(t)) {
  t.test('a bridge that dies is replaced within the lease; a closing one hands the lease back', async t => {
    const env = redisEnv(t)
    const admin = redisClient(t)
    const leaseKey = `${env.REDIS_PREFIX}bridge`
    const bridge = runEntry('server', [], { ...env, HOST: '127.0.0.1', PORT: '0', METRICS_PORT: '0', INSTANCE_ID: 'doomed', LOG_LEVEL: 'warn' })
    t.teardown(() => bridge.child.kill('SIGKILL'))
    const subscribers = async (): Promise<number> => (await admin.pubsub('NUMSUB', env.REDIS_CHANNEL!) as [string, number])[1]
    await waitUntil('the process holds the lease and listens', async () => (await admin.get(leaseKey))?.startsWith('doomed:') === true && await subscribers() === 1, 10_000)
    const b = await startApp(t, { ...env, INSTANCE_ID: 'b' })
    const client = await subscribe(t, b.url, 'streams=9')
    await admin.publish(env.REDIS_CHANNEL!, JSON.stringify(cancelled('9')))
    await client.eventCount(1)
    t.notOk(b.app.fanout.bridging, 'the process bridged it; b read it from the log')

    bridge.child.kill('SIGKILL')
    await bridge.exited
    // Messages sent while no instance holds the lease are lost (pub/sub keeps nothing): send until one arrives.
    await waitUntil('b takes over and logs the channel', async () => {
      await admin.publish(env.REDIS_CHANNEL!, JSON.stringify(cancelled('9')))
      return client.events.length > 1
    }, 10_000)
    t.ok(b.app.fanout.bridging)
    t.match(await admin.get(leaseKey), /^b:/)
    t.ok(b.logs.some(line => line.msg === 'bridge lease taken: this instance logs the channel\'s messages'))

    await b.app.close()
    t.equal(await admin.get(leaseKey), null, 'closing hands the lease back at once')
  })

  t.test('a bridge that finds its lease taken stops and logs nothing more: the log refuses a stale lease', async t => {
    const env = redisEnv(t)
    const a = await startApp(t, { ...env, INSTANCE_ID: 'a' })
    await waitUntil('a bridges', () => a.app.fanout.bridging)
    const admin = redisClient(t)
    // Another holder appears (as after a long pause of ours); a message is already on its way to us.
    await admin.multi()
      .set(`${env.REDIS_PREFIX}bridge`, 'someone-else', 'PX', 1500)
      .publish(env.REDIS_CHANNEL!, JSON.stringify(cancelled('late')))
      .exec()
    // Which comes first is a race between two connections: the message, whose append the script then
    // refuses, or the renewal that finds the lease gone and drops the subscription with the message.
    await waitUntil('a gives up the bridge', () => !a.app.fanout.bridging)
    await new Promise(resolve => setTimeout(resolve, 200)) // an append still on its way
    const { channelMessages } = a.app.fanout
    t.equal(channelMessages.bridged, 0, 'never bridged')
    t.ok(channelMessages.failed <= 1, 'refused, or dropped with the subscription')
    t.equal(await admin.xlen(`${env.REDIS_PREFIX}events`), 0, 'nothing logged by a bridge without the lease')
    t.ok(a.logs.some(line => line.msg === 'bridge lease given up or lost: another instance takes the channel over'))

    // The script's own check, without the race: an append with a tenure's token that no longer holds.
    const log = new RedisEventLog(admin, { prefix: env.REDIS_PREFIX!, maxEvents: 100, maxAgeMs: 60_000, participantsTtlS: 60 })
    await t.rejects(log.append([cancelled('late')], 'a:an-old-tenure'), /NOTBRIDGE/, 'a stale lease token is refused')
    t.equal(await admin.xlen(`${env.REDIS_PREFIX}events`), 0)
    await waitUntil('a takes the lapsed lease again', () => a.app.fanout.bridging, 5000)
  })

  t.test('a bridge that may not subscribe to the channel gives the lease up for others', async t => {
    const redis = await PrivateRedis.start(t)
    const admin = redisClient(t, redis.url)
    // Redis 7 gives a new ACL user no channels: SUBSCRIBE is refused with NOPERM.
    await admin.acl('SETUSER', 'no-channels', 'on', '>a-password-for-tests', '~*', '+@all')
    const url = `redis://no-channels:a-password-for-tests@127.0.0.1:${redis.port}`
    const env = redisEnv(t, {}, url)
    const a = await startApp(t, { ...env, INSTANCE_ID: 'a' })
    await waitUntil('the subscription is refused', () => a.logs.some(line => line.msg === 'could not subscribe to the channel: the bridge lease is given up'))
    await waitUntil('the lease is given up', () => !a.app.fanout.bridging)
    t.match(String((a.logs.find(line => line.msg === 'could not subscribe to the channel: the bridge lease is given up')!.err as any).message), /NOPERM/)
    t.equal(await admin.get(`${env.REDIS_PREFIX}bridge`), null, 'and handed back')
  })

  t.test('channel messages are taken as HTTP bodies are: up to the body limit, no __proto__ or constructor keys', async t => {
    // Two events of a MiB each are written to the stream at once: room for both.
    const env = redisEnv(t, { MAX_BUFFERED_BYTES: String(16 * 1024 * 1024) })
    const channel = env.REDIS_CHANNEL!
    const a = await startApp(t, { ...env, INSTANCE_ID: 'a' })
    await waitUntil('a bridges', () => a.app.fanout.bridging)
    const client = await subscribe(t, a.url, 'streams=b')
    const admin = redisClient(t)
    const limit = 1024 * 1024 // Fastify's default body limit, which the app keeps
    /** A valid event of exactly `bytes` bytes of JSON. */
    const sized = (bytes: number): string => {
      const empty = JSON.stringify({ event: 'stream.cancelled', data: { streamId: 'b', note: '' } })
      return empty.replace('"note":""', `"note":"${'x'.repeat(bytes - empty.length)}"`)
    }
    const poisoned = [
      '{"event":"stream.cancelled","data":{"streamId":"b","__proto__":{"polluted":true}}}',
      '{"event":"stream.cancelled","data":{"streamId":"b","constructor":{"prototype":{"polluted":true}}}}'
    ]
    t.equal((await publish(a.url, sized(limit))).status, 202, 'HTTP: a body of exactly the limit is taken')
    t.equal((await publish(a.url, sized(limit + 1))).status, 413, 'HTTP: a byte more is not')
    for (const body of poisoned) t.equal((await publish(a.url, body)).status, 400, `HTTP: ${body} is refused`)

    for (let i = 0; i < 5; i++) await admin.publish(channel, sized(limit + 1))
    await admin.publish(channel, sized(8 * 1024 * 1024))
    for (const message of poisoned) await admin.publish(channel, message)
    const manyUsers = JSON.stringify({ event: 'stream.cancelled', data: { streamId: 'b' }, users: Array.from({ length: 1000 }, () => 'not-an-account') })
    await admin.publish(channel, manyUsers)
    await admin.publish(channel, sized(limit))
    const events = await client.eventCount(2, 10_000)
    const atLimit = JSON.stringify(JSON.parse(sized(limit)).data).length
    t.same(events.map(event => event.data.length), [atLimit, atLimit], 'the HTTP one and the channel one of exactly the limit, and nothing else')
    await waitUntil('the channel\'s event is counted', () => a.app.fanout.channelMessages.bridged === 1)
    t.same(a.app.fanout.channelMessages, { bridged: 1, malformed: 9, failed: 0 })

    const lines = a.logs.filter(line => line.channel === channel && line.level === 40)
    t.same(lines.map(line => line.msg), [
      'channel message is larger than the body limit; dropped',
      'channel message has a __proto__ or constructor key; dropped',
      'channel message is not a valid event; dropped'
    ], 'a line for each kind of problem, not for each message')
    t.match(lines[0], { bytes: limit + 1, limit })
    for (const line of lines) t.ok(JSON.stringify(line).length < 2000, `a short line: ${JSON.stringify(line).slice(0, 300)}`)
    t.equal(({} as Record<string, unknown>).polluted, undefined)
  })
}
