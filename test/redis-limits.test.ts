import t from 'tap'
import { Redis } from 'ioredis'
import { startApp, waitUntil } from './helpers/app.js'
import { openStream, subscribe } from './helpers/sse-client.js'
import { freePort, PrivateRedis, redisAnswers, redisEnv } from './helpers/redis.js'
import { runEntry } from './helpers/process.js'

/** The answer to a subscription: a refusal's body, or a stream that is closed again at once. */
async function status (url: string): Promise<{ status: number, body: any }> {
  const client = await openStream(`${url}/events/subscribe?all=true`)
  if (client.status === 200) {
    client.close()
    return { status: 200, body: undefined }
  }
  await client.until('the refusal\'s body', () => client.ended)
  return { status: client.status, body: JSON.parse(client.raw) }
}

/** a's count of streams from 127.0.0.1, as Redis holds it (undefined: none). */
async function redisCount (url: string, prefix: string): Promise<string | undefined> {
  const client = new Redis(url)
  const counts = await client.hgetall(`${prefix}places:127.0.0.1`)
  client.disconnect()
  return Object.entries(counts).find(([owner]) => owner.startsWith('a:'))?.[1]
}

if (await redisAnswers(t)) {
  t.test('MAX_CONNECTIONS_PER_IP counts the streams on every instance; a closed one frees its place everywhere', async t => {
    const env = redisEnv(t, { MAX_CONNECTIONS_PER_IP: '2' })
    const a = await startApp(t, { ...env, INSTANCE_ID: 'a' })
    const b = await startApp(t, { ...env, INSTANCE_ID: 'b' })
    await subscribe(t, a.url, 'all=true')
    const onB = await subscribe(t, b.url, 'all=true')
    const refused = await status(a.url)
    t.equal(refused.status, 429)
    t.same(refused.body, { error: 'too_many_per_ip', message: '2 event streams are open from 127.0.0.1 already; close one first' })
    t.equal(a.app.connectionLimits.openFrom('127.0.0.1'), 1, 'the refused stream took no place')
    onB.close()
    await waitUntil('b gives the place back', () => b.app.connectionLimits.openFrom('127.0.0.1') === 0)
    await waitUntil('a has the place', async () => {
      const client = await openStream(`${a.url}/events/subscribe?all=true`)
      t.teardown(() => client.close())
      return client.status === 200
    })
  })

  t.test('the places of a crashed instance free themselves when its liveness lapses', async t => {
    const env = redisEnv(t, { MAX_CONNECTIONS_PER_IP: '2', HEARTBEAT_MS: '200' })
    const port = await freePort()
    const crashing = runEntry('server', [], { ...env, HOST: '127.0.0.1', PORT: String(port), METRICS_PORT: '0', INSTANCE_ID: 'crashing', LOG_LEVEL: 'warn' })
    t.teardown(() => crashing.child.kill('SIGKILL'))
    await waitUntil('the process listens', async () => await fetch(`http://127.0.0.1:${port}/healthz`).then(r => r.ok, () => false), 10_000)
    const held = [await openStream(`http://127.0.0.1:${port}/events/subscribe?all=true`), await openStream(`http://127.0.0.1:${port}/events/subscribe?all=true`)]
    t.same(held.map(client => client.status), [200, 200])
    const b = await startApp(t, { ...env, INSTANCE_ID: 'b' })
    t.equal((await status(b.url)).status, 429, 'the process\'s two streams count on b')
    crashing.child.kill('SIGKILL')
    await crashing.exited
    // Its streams' sockets are gone with it; their places stay in Redis until its liveness (3 heartbeats) lapses.
    await waitUntil('b accepts again', async () => {
      const client = await openStream(`${b.url}/events/subscribe?all=true`)
      t.teardown(() => client.close())
      return client.status === 200
    }, 5000)
    for (const client of held) client.close()
  })

  t.test('SUBSCRIBE_RATE_PER_MINUTE is counted across instances (the rate limiter\'s Redis store)', async t => {
    const env = redisEnv(t, { SUBSCRIBE_RATE_PER_MINUTE: '2' })
    const a = await startApp(t, { ...env, INSTANCE_ID: 'a' })
    const b = await startApp(t, { ...env, INSTANCE_ID: 'b' })
    await subscribe(t, a.url, 'all=true')
    await subscribe(t, a.url, 'all=true')
    const refused = await fetch(`${b.url}/events/subscribe?all=true`)
    t.equal(refused.status, 429)
    await refused.body?.cancel()
  })

  t.test('while Redis is away the local counts decide; they are set right in Redis once it is back', async t => {
    const redis = await PrivateRedis.start(t)
    const env = redisEnv(t, { MAX_CONNECTIONS_PER_IP: '3', SUBSCRIBE_RATE_PER_MINUTE: '100' }, redis.url)
    const a = await startApp(t, { ...env, INSTANCE_ID: 'a' })
    const b = await startApp(t, { ...env, INSTANCE_ID: 'b' })
    const before = [await subscribe(t, a.url, 'all=true'), await subscribe(t, a.url, 'all=true')]
    await redis.kill()
    await waitUntil('a sees Redis gone', () => !a.app.fanout.redisUp)
    await subscribe(t, a.url, 'all=true')
    t.equal((await status(a.url)).status, 429, 'the local per-address cap still holds')
    t.ok(a.logs.some(line => typeof line.msg === 'string' && line.msg.startsWith('Redis did not answer: the per-address cap')))
    for (const client of before) client.close()
    await waitUntil('a gives the places back locally', () => a.app.connectionLimits.openFrom('127.0.0.1') === 1)

    // Redis still says 2 for a (its releases failed); a sets it to 1 when it is back.
    await redis.restart()
    await waitUntil('both reconnect', () => a.app.fanout.redisUp && b.app.fanout.redisUp, 10_000)
    await waitUntil('a\'s count is set right', async () => Number(await redisCount(redis.url, env.REDIS_PREFIX!)) === 1)
    await subscribe(t, b.url, 'all=true')
    await subscribe(t, b.url, 'all=true')
    t.equal((await status(b.url)).status, 429, 'three in all: a\'s one and b\'s two')
  })
}
