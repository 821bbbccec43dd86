import t from 'tap'
import { startApp, waitUntil } from './helpers/app.js'
import { PrivateRedis, redisAnswers, redisEnv } from './helpers/redis.js'

if (await redisAnswers(t)) {
  t.test("publish's 503 while Redis is away carries x-content-type-options: nosniff", async t => {
    const redis = await PrivateRedis.start(t)
    const { url, app } = await startApp(t, redisEnv(t, {}, redis.url))
    await redis.kill()
    await waitUntil('the instance sees Redis gone', () => !app.fanout.redisUp)
    const response = await fetch(`${url}/events/publish`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ event: 'stream.cancelled', data: { streamId: '1' } })
    })
    t.equal(response.status, 503)
    t.equal(response.headers.get('x-content-type-options'), 'nosniff')
    t.match(await response.json(), { error: 'redis_unavailable' })
  })
}
