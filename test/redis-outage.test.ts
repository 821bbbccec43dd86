import { connect } from 'node:net'
import t from 'tap'
import { Redis } from 'ioredis'
import { publish, randomAccountId, startApp, waitUntil, type RunningApp } from './helpers/app.js'
import { openStream, subscribe } from './helpers/sse-client.js'
import { PrivateRedis, redisAnswers, redisClient, redisEnv } from './helpers/redis.js'
import { runEntry } from './helpers/process.js'
import { nowS, signJwt } from './helpers/jwt.js'

const cancelled = (streamId: string) => ({ event: 'stream.cancelled', data: { streamId } })

async function publishIds (url: string, events: unknown[]): Promise<string[]> {
  const { status, body } = await publish(url, events)
  if (status !== 202) throw new Error(`publish failed: ${status} ${JSON.stringify(body)}`)
  return body.ids
}

/** The id of the Redis connection an instance named `name` (INSTANCE_ID:role). */
async function clientId (redis: Redis, name: string): Promise<string> {
  const list = await redis.client('LIST') as string
  const line = list.split('\n').find(entry => entry.includes(` name=${name} `))
  if (line === undefined) throw new Error(`no Redis connection named ${name}`)
  return /id=(\d+)/.exec(line)![1]!
}

if (await redisAnswers(t)) {
  t.test('a Redis restart mid-stream: streams stay open, publishing answers 503, then nothing lost or doubled', async t => {
    const redis = await PrivateRedis.start(t)
    const env = redisEnv(t, { HEARTBEAT_MS: '50' }, redis.url)
    const a = await startApp(t, { ...env, INSTANCE_ID: 'a' })
    const b = await startApp(t, { ...env, INSTANCE_ID: 'b', READY_REQUIRES_REDIS: 'true' })
    const client = await subscribe(t, b.url, 'all=true')
    const before = await publishIds(a.url, [cancelled('1'), cancelled('2')])
    await client.eventCount(2)

    await redis.kill()
    await waitUntil('both instances see Redis gone', () => !a.app.fanout.redisUp && !b.app.fanout.redisUp)
    const refused = await publish(a.url, [cancelled('lost')])
    t.equal(refused.status, 503)
    t.match(refused.body, { error: 'redis_unavailable', message: /nothing was published/ })
    const response = await fetch(`${a.url}/events/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(cancelled('x')) })
    t.equal(response.headers.get('retry-after'), '5')
    await response.body?.cancel()
    t.same(await (await fetch(`${a.url}/readyz`)).json(), { status: 'ready', redis: 'down' }, 'ready by default: open streams still work')
    const strict = await fetch(`${b.url}/readyz`)
    t.equal(strict.status, 503, 'READY_REQUIRES_REDIS=true makes it unready')
    t.same(await strict.json(), { status: 'redis_unavailable', redis: 'down' })
    t.match(await (await fetch(`${a.url}/events/stats`)).json(), { fanout: { mode: 'redis', redis: 'down' } })
    const gaveUp = (app: RunningApp): boolean => app.logs.some(line => line.msg === 'bridge lease given up or lost: another instance takes the channel over')
    await waitUntil('the bridge gives its lease up, unrenewed', () => gaveUp(a) || gaveUp(b))
    t.ok(!a.app.fanout.bridging && !b.app.fanout.bridging, 'neither instance bridges')
    const metrics = await (await fetch(`${a.url}/metrics`)).text()
    t.match(metrics, /sse_redis_up 0/)
    t.match(metrics, /sse_redis_bridge 0/)
    t.match(metrics, /^sse_ready 1$/m, 'ready by default, in /metrics too')
    t.match(await (await fetch(`${b.url}/metrics`)).text(), /^sse_ready 0$/m, 'and unready with READY_REQUIRES_REDIS=true')
    const heartbeats = client.comments.length
    await client.until('heartbeats go on during the outage', () => client.comments.length > heartbeats + 2)
    t.notOk(client.ended, 'the stream stays open')

    await redis.restart()
    await waitUntil('both instances reconnect', () => a.app.fanout.redisUp && b.app.fanout.redisUp, 10_000)
    const after = await publishIds(a.url, [cancelled('3'), cancelled('4')])
    const events = await client.eventCount(5)
    t.same(events.map(e => e.id), [...before, events[2]!.id, ...after], 'every accepted event once, in order')
    // Events that b had not read when Redis lost them would be gone: the streams are told to refetch.
    t.equal(events[2]!.event, 'events.resync')
    t.same(JSON.parse(events[2]!.data), { reason: 'gap', lastEventId: '' })
    t.ok(b.logs.some(line => line.msg === 'the Redis log started again (Redis lost its data?): streams are told to resync'))
    t.ok(a.logs.some(line => line.msg === 'redis connection lost; reconnecting with backoff' && line.role === 'commands'))
    t.ok(a.logs.some(line => line.msg === 'redis connection is back'))

    // The lease went with the old Redis's data: an instance takes it again and the channel works.
    await waitUntil('an instance bridges again', () => a.app.fanout.bridging || b.app.fanout.bridging, 10_000)
    const publisher = new Redis(redis.url)
    t.teardown(() => publisher.disconnect())
    await publisher.publish(env.REDIS_CHANNEL!, JSON.stringify(cancelled('5')))
    t.equal((await client.eventCount(6))[5]!.data, '{"streamId":"5"}')
  })

  t.test('a killed reader connection picks up where it was: no loss, no duplicate', async t => {
    const redis = await PrivateRedis.start(t)
    const env = redisEnv(t, {}, redis.url)
    const a = await startApp(t, { ...env, INSTANCE_ID: 'a' })
    const b = await startApp(t, { ...env, INSTANCE_ID: 'b' })
    const client = await subscribe(t, b.url, 'all=true')
    const admin = redisClient(t, redis.url)
    const ids: string[] = []
    for (let round = 0; round < 10; round++) {
      ids.push(...await publishIds(a.url, [cancelled(`r${round}`), cancelled(`s${round}`)]))
      if (round === 4) await admin.client('KILL', 'ID', await clientId(admin, 'b:reader'))
    }
    const events = await client.eventCount(20, 10_000)
    t.same(events.map(e => e.id), ids)
    await new Promise(resolve => setTimeout(resolve, 100))
    t.equal(client.events.length, 20, 'nothing twice')
  })

  t.test('when the log is trimmed past what a reader had read, that instance\'s streams resync', async t => {
    const redis = await PrivateRedis.start(t)
    const env = redisEnv(t, { HISTORY_SIZE: '2', MAX_PUBLISH_BATCH: '2' }, redis.url)
    const a = await startApp(t, { ...env, INSTANCE_ID: 'a' })
    const b = await startApp(t, { ...env, INSTANCE_ID: 'b' })
    const client = await subscribe(t, b.url, 'all=true')
    const admin = redisClient(t, redis.url)
    // ioredis waits at least 150 ms before reconnecting; the five events are in and trimmed by then.
    await admin.client('KILL', 'ID', await clientId(admin, 'b:reader'))
    const ids: string[] = []
    for (const batch of [[1, 2], [3, 4], [5]]) ids.push(...await publishIds(a.url, batch.map(n => cancelled(`g${n}`))))
    await client.until('a resync', () => client.events.some(e => e.event === 'events.resync'))
    const resync = client.events.find(e => e.event === 'events.resync')!
    t.same(JSON.parse(resync.data), { reason: 'gap', lastEventId: '' })
    await client.until('the retained events', () => client.events.some(e => e.id === ids[4]))
    t.ok(b.logs.some(line => line.msg === 'entries were trimmed from the Redis log before this instance read them: streams are told to resync'))
    t.equal(b.app.broker.metrics.resyncs.gap, 1)
    const stale = await subscribe(t, b.url, 'all=true', { 'last-event-id': ids[0]! })
    t.equal((await stale.eventCount(1))[0]!.event, 'events.resync', 'a resume from before the gap resyncs')
  })

  t.test('start-up fails with a clear message when Redis does not answer', async t => {
    const server = runEntry('server', [], { HOST: '127.0.0.1', PORT: '0', METRICS_PORT: '0', REDIS_URL: 'redis://127.0.0.1:1', REDIS_CONNECT_TIMEOUT_MS: '500' })
    const [code] = await server.exited
    t.equal(code, 1)
    t.match(server.output().stdout + server.output().stderr, /Redis at redis:\/\/127\.0\.0\.1:1 did not answer within 500 ms .*check REDIS_URL/)
  })

  t.test('a client that leaves while its token\'s streams are looked up in Redis takes no place', async t => {
    const redis = await PrivateRedis.start(t)
    const secret = 'an-hs256-secret-that-is-long-enough-for-tests'
    const publishToken = 'a-publish-token-for-tests'
    const a: RunningApp = await startApp(t, redisEnv(t, { AUTH_MODE: 'jwt', JWT_SECRET: secret, PUBLISH_TOKEN: publishToken, MAX_CONNECTIONS_PER_IP: '1' }, redis.url))
    const admin = redisClient(t, redis.url)
    const account = randomAccountId()
    const stream = { id: '1', sender: account, recipient: randomAccountId(), amount: '1', ratePerSecond: '1', startTime: 1 }
    t.equal((await publish(a.url, { event: 'stream.created', data: stream }, { authorization: `Bearer ${publishToken}` })).status, 202)
    const token = signJwt({ sub: account, exp: nowS() + 60 }, { alg: 'HS256', secret })
    await admin.client('PAUSE', 500)
    const { port } = new URL(a.url)
    const socket = connect(Number(port), '127.0.0.1')
    socket.write(`GET /events/subscribe?streams=1 HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${token}\r\n\r\n`)
    await new Promise(resolve => setTimeout(resolve, 100))
    socket.destroy()
    await new Promise(resolve => setTimeout(resolve, 600))
    t.equal(a.app.broker.size, 0, 'no stream was opened')
    const next = await subscribe(t, a.url, 'streams=1', { authorization: `Bearer ${token}` })
    t.equal(next.status, 200, 'its place was given back: the one stream allowed from this address opens')
    next.close()

    // Without Redis nobody can say whether the account takes part: the client is told to come back.
    await redis.kill()
    await waitUntil('a sees Redis gone', () => !a.app.fanout.redisUp)
    const later = await openStream(`${a.url}/events/subscribe?streams=1`, { authorization: `Bearer ${token}` })
    await later.until('the stream ends', () => later.ended)
    t.equal(later.status, 200, 'not an error status, which would stop EventSource for good')
    t.equal(later.raw, 'retry: 3000\n\n')
    t.equal(a.app.broker.metrics.connections.unavailable, 1)
    t.ok(a.logs.some(line => line.msg === 'could not ask Redis who takes part in the streams: the client is told to retry'))
  })
}
