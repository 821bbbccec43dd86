import t from 'tap'
import { Redis } from 'ioredis'
import { BridgeLease } from '../services/redis/bridge-lease.js'
import { waitUntil } from './helpers/app.js'
import { redisAnswers, redisClient, redisEnv } from './helpers/redis.js'

/** A lease whose events are recorded in order. */
function lease (redis: Redis, key: string, owner: string, ttlMs = 3000) {
  const seen: string[] = []
  const bridge = new BridgeLease(redis, key, owner, ttlMs, {
    acquired: () => seen.push('acquired'),
    lost: () => seen.push('lost'),
    error: error => seen.push(`error: ${error.message}`)
  })
  return { bridge, seen }
}

if (await redisAnswers(t)) {
  t.test('one holder at a time; a stopped holder hands over at once', async t => {
    const key = `${redisEnv(t).REDIS_PREFIX}bridge`
    const redis = redisClient(t)
    const first = lease(redis, key, 'first')
    const second = lease(redis, key, 'second')
    first.bridge.start()
    await waitUntil('first holds it', () => first.bridge.held)
    second.bridge.start()
    t.teardown(() => second.bridge.stop())
    await new Promise(resolve => setTimeout(resolve, 1500)) // one more attempt each, at least
    t.notOk(second.bridge.held, 'second waits while first renews')
    t.equal(await redis.pttl(key) > 0, true)
    await first.bridge.stop()
    t.same(first.seen, ['acquired', 'lost'])
    await waitUntil('second takes over', () => second.bridge.held)
    t.match(await redis.get(key), /^second:[\da-f-]{36}$/, 'the holder and this tenure\'s token')
    t.equal(await redis.get(key), second.bridge.token)
  })

  t.test('stopping while an attempt is on its way leaves nothing held', async t => {
    const key = `${redisEnv(t).REDIS_PREFIX}bridge`
    const redis = redisClient(t)
    const quick = lease(redis, key, 'quick')
    quick.bridge.start()
    await quick.bridge.stop()
    t.same(quick.seen, [], 'the late answer is ignored')
    t.equal(await redis.get(key), null, 'and the lease it took is handed back')

    const offline = new Redis('redis://127.0.0.1:1', { lazyConnect: true, enableOfflineQueue: false, retryStrategy: () => null })
    offline.on('error', () => {})
    t.teardown(() => offline.disconnect())
    const failing = lease(offline, key, 'offline')
    failing.bridge.start()
    await failing.bridge.stop()
    t.same(failing.seen, ['error: Stream isn\'t writeable and enableOfflineQueue options is false'],
      'only the hand-back\'s failure is reported; the attempt\'s is not, once stopped')
  })
}

if (await redisAnswers(t)) {
  t.test('a holder that yields stays out for two lease periods, so another takes over', async t => {
    const key = `${redisEnv(t).REDIS_PREFIX}bridge`
    const redis = redisClient(t)
    const first = lease(redis, key, 'first', 600)
    const second = lease(redis, key, 'second', 600)
    t.teardown(() => first.bridge.stop())
    t.teardown(() => second.bridge.stop())
    first.bridge.start()
    await waitUntil('first holds it', () => first.bridge.held)
    await first.bridge.yield()
    t.same(first.seen, ['acquired', 'lost'])
    t.equal(await redis.get(key), null, 'given back at once')
    second.bridge.start()
    await waitUntil('second takes it', () => second.bridge.held)
    await second.bridge.stop()
    await new Promise(resolve => setTimeout(resolve, 500)) // first tries twice meanwhile, and waits
    t.notOk(first.bridge.held, 'first stays out while its pause lasts')
    await waitUntil('first comes back after it', () => first.bridge.held, 3000)
  })
}
