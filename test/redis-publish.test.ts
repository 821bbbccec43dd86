import t from 'tap'
import { publish, startApp, waitUntil } from './helpers/app.js'
import { PrivateRedis, redisAnswers, redisClient, redisEnv } from './helpers/redis.js'

if (await redisAnswers(t)) {
  t.test('a publish Redis does not answer in time gets a 503 that says the outcome is unknown', async t => {
    const redis = await PrivateRedis.start(t)
    const a = await startApp(t, { ...redisEnv(t, {}, redis.url), INSTANCE_ID: 'a' })
    const admin = redisClient(t, redis.url)
    t.equal((await publish(a.url, { event: 'stream.cancelled', data: { streamId: 'first' } })).status, 202)
    // Redis takes commands but answers none for 11 s: the rate limiter gives up after 5 s and lets
    // the request through (its store is Redis too), then the publish itself times out.
    await admin.client('PAUSE', 11_000, 'ALL')
    const refused = await publish(a.url, { event: 'stream.cancelled', data: { streamId: 'late' } })
    t.equal(refused.status, 503)
    t.match(refused.body, { error: 'redis_unavailable', message: /the events may or may not have been published/ })
  })

  t.test('data nested too deep is a 400, never a 503, from a publisher or on the channel', async t => {
    const env = redisEnv(t)
    const a = await startApp(t, { ...env, INSTANCE_ID: 'a' })
    // Too deep for JSON.stringify here too: written as bytes.
    const deep = `{"event":"stream.cancelled","data":{"streamId":"1","x":${'['.repeat(5000)}${']'.repeat(5000)}}}`
    const refused = await publish(a.url, deep)
    t.match(refused, { status: 400, body: { error: 'invalid_event', invalid: [{ problems: [{ path: /^\/data\/x(\/0){31}$/ }] }] } })

    await waitUntil('a bridges', () => a.app.fanout.bridging)
    const admin = redisClient(t)
    await admin.publish(env.REDIS_CHANNEL!, deep)
    await waitUntil('the channel message is dropped as malformed', () => a.app.fanout.channelMessages.malformed === 1)
    t.equal(a.app.fanout.channelMessages.failed, 0, 'refused before Redis is asked to take it')
    t.equal(await admin.xlen(`${env.REDIS_PREFIX}events`), 0)
  })
}
