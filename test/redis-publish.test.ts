import t from 'tap'
import { publish, startApp } from './helpers/app.js'
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
}
