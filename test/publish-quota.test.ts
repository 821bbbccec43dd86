import t from 'tap'
import { PublishQuota } from '../services/publish-quota.js'

/** A quota on a clock the test moves. */
function quota (ratePerSecond: number, maxPublishers = 100): { quota: PublishQuota, advance (ms: number): void } {
  let now = 1_000_000
  return { quota: new PublishQuota({ ratePerSecond, maxPublishers, now: () => now }), advance: ms => { now += ms } }
}

t.test('a burst of the rate, then the rate', async t => {
  const { quota: q, advance } = quota(5)
  t.same(q.take('a', 5), { ok: true }, 'the burst')
  t.same(q.take('a', 1), { ok: false, retryAfterS: 1 }, 'then nothing is left')
  advance(200)
  t.same(q.take('a', 1), { ok: true }, 'one event each 200 ms')
  t.same(q.take('a', 1), { ok: false, retryAfterS: 1 })
  advance(10_000)
  t.same(q.take('a', 5), { ok: true }, 'a long pause saves up no more than the burst')
  t.same(q.take('a', 1), { ok: false, retryAfterS: 1 })
})

t.test('a batch takes all its events or none', async t => {
  const { quota: q, advance } = quota(5)
  q.take('a', 5)
  advance(600)
  t.same(q.take('a', 5), { ok: false, retryAfterS: 1 }, 'three are left: five are refused')
  t.same(q.take('a', 3), { ok: true }, 'and the refused batch took none')
  t.throws(() => q.take('a', 6), { name: 'RangeError', message: 'a batch of 6 events exceeds the burst of 5: it could never be published' })
})

t.test('Retry-After is in whole seconds, at least 1', async t => {
  const { quota: q, advance } = quota(1000)
  q.take('a', 1000)
  advance(999)
  t.same(q.take('a', 1000), { ok: false, retryAfterS: 1 }, '1 ms to wait is still a second')
})

t.test('each publisher has a bucket of its own', async t => {
  const { quota: q } = quota(5)
  q.take('a', 5)
  t.same(q.take('b', 5), { ok: true })
  t.same(q.take('a', 1), { ok: false, retryAfterS: 1 })
})

t.test('buckets are bounded: idle ones are forgotten, and the least recently used beyond the cap', async t => {
  const { quota: q, advance } = quota(5, 3)
  q.take('a', 5)
  q.take('b', 1)
  t.equal(q.size, 2)
  advance(1000)
  q.take('c', 1)
  t.equal(q.size, 1, 'a and b refilled: remembering them would change nothing')
  q.take('d', 5)
  q.take('e', 5)
  q.take('f', 5)
  t.equal(q.size, 3, 'at most maxPublishers')
  t.same(q.take('c', 5), { ok: true }, 'c, the least recently used, was forgotten: a full bucket again')
  t.same(q.take('f', 1), { ok: false, retryAfterS: 1 }, 'the others are kept')
})

t.test('options are checked up front', async t => {
  for (const [options, message] of [
    [{ ratePerSecond: 0, maxPublishers: 1 }, 'publish quota: ratePerSecond must be a positive integer'],
    [{ ratePerSecond: 1.5, maxPublishers: 1 }, 'publish quota: ratePerSecond must be a positive integer'],
    [{ ratePerSecond: 1, maxPublishers: 0 }, 'publish quota: maxPublishers must be a positive integer']
  ] as const) t.throws(() => new PublishQuota(options), { name: 'TypeError', message })
  const q = new PublishQuota({ ratePerSecond: 1, maxPublishers: 1 })
  t.same(q.take('a', 1), { ok: true }, 'the clock is performance.now() by default')
})
