import t from 'tap'
import { MAX_DATA_DEPTH, MAX_PROBLEMS, streamIdOf, validateEnvelope, type Envelope } from '../services/event-schema.js'
import { randomAccountId } from './helpers/app.js'

const sender = randomAccountId()
const recipient = randomAccountId()

const valid: Envelope[] = [
  { event: 'stream.created', data: { id: '42', sender, recipient, ratePerSecond: '0.001', token: 'USDC' } },
  { event: 'stream.created', data: { id: 7, sender, recipient } },
  { event: 'stream.topped_up', data: { streamId: '42', amount: '123456789012345678901234567890.123456789' } },
  { event: 'stream.withdrawn', data: { streamId: 'a_B-9', amount: 9007199254740991 } },
  { event: 'stream.cancelled', data: { streamId: '42' } },
  { event: 'stream.completed', data: { streamId: '42' }, users: [sender] }
]

t.test('accepts the five event types, passing extra fields through', async t => {
  for (const envelope of valid) {
    const result = validateEnvelope(envelope)
    t.ok(result.ok, envelope.event)
    if (result.ok) t.same(result.envelope, envelope)
  }
})

function problemsOf (value: unknown): Array<{ path: string, message: string }> {
  const result = validateEnvelope(value)
  return result.ok ? [] : result.problems
}

t.test('names what is wrong and where', async t => {
  t.same(problemsOf(7), [{ path: '/', message: 'Expected object' }])
  t.match(problemsOf({ event: 'stream.paused', data: {} }), [{ path: '/event', message: /must be one of stream.created, / }])
  t.match(problemsOf({ event: 'stream.cancelled', data: [] }), [{ path: '/data', message: 'must be a JSON object' }])
  t.match(problemsOf({ event: 'stream.cancelled', data: { streamId: '1' }, extra: 1 }), [{ path: '/extra' }])
  t.match(problemsOf({ event: 'stream.created', data: { id: '1', recipient } }), [{ path: '/data/sender', message: 'is required' }])
  t.match(problemsOf({ event: 'stream.created', data: { id: '1', sender: 'GABC', recipient } }),
    [{ path: '/data/sender', message: /Stellar account id/ }])
  t.match(problemsOf({ event: 'stream.cancelled', data: { streamId: 'has space' } }),
    [{ path: '/data/streamId', message: /stream id/ }])
  t.match(problemsOf({ event: 'stream.cancelled', data: { streamId: 'x'.repeat(65) } }), [{ path: '/data/streamId' }])
  t.match(problemsOf({ event: 'stream.completed', data: { streamId: '1' }, users: ['nope'] }), [{ path: '/users/0' }])
  t.match(problemsOf({ event: 'stream.completed', data: { streamId: '1' }, users: Array(17).fill(sender) }), [{ path: '/users' }])
})

t.test('amounts never lose precision', async t => {
  // 2^53 + 1 cannot be a JSON number without rounding: it must come as a string.
  t.match(problemsOf(JSON.parse('{"event":"stream.withdrawn","data":{"streamId":"1","amount":9007199254740993}}')),
    [{ path: '/data/amount', message: /decimal string/ }])
  for (const amount of [-1, 1.5, '-1', '1e5', '01', '1.', '.5', ' 1', '']) {
    t.match(problemsOf({ event: 'stream.withdrawn', data: { streamId: '1', amount } }), [{ path: '/data/amount' }], JSON.stringify(amount))
  }
  t.same(problemsOf({ event: 'stream.withdrawn', data: { streamId: '1', amount: '0.0000001' } }), [])
})

t.test('the stream an event is about', async t => {
  t.equal(streamIdOf(valid[0]!), '42')
  t.equal(streamIdOf(valid[1]!), '7', 'numeric ids route as strings')
  t.equal(streamIdOf(valid[3]!), 'a_B-9')
})

/** `data` nested `levels` deep, itself the first level: objects, or arrays with `array`. */
function nested (levels: number, array = false): Record<string, unknown> {
  let inner: unknown = 1
  for (let level = 1; level < levels; level++) inner = array ? [inner] : { a: inner }
  return { streamId: '1', x: inner }
}

t.test('data nests at most MAX_DATA_DEPTH levels, checked without recursion', async t => {
  t.equal(MAX_DATA_DEPTH, 32)
  for (const array of [false, true]) {
    t.ok(validateEnvelope({ event: 'stream.cancelled', data: nested(MAX_DATA_DEPTH, array) }).ok, `${MAX_DATA_DEPTH} levels pass (array: ${array})`)
  }
  const tooDeep = `nests objects and arrays more than ${MAX_DATA_DEPTH} levels deep`
  const path33 = '/data/x' + '/a'.repeat(MAX_DATA_DEPTH - 1)
  t.same(problemsOf({ event: 'stream.cancelled', data: nested(MAX_DATA_DEPTH + 1) }),
    [{ path: path33, message: tooDeep }], 'the path names the first level too many')
  t.match(problemsOf({ event: 'stream.cancelled', data: nested(MAX_DATA_DEPTH + 1, true) }),
    [{ path: '/data/x' + '/0'.repeat(MAX_DATA_DEPTH - 1) }])
  // Far deeper than any recursion survives, as JSON.parse builds it from 1 MB of "[".
  t.match(problemsOf({ event: 'stream.cancelled', data: nested(500_000, true) }), [{ path: /^\/data\/x(\/0){31}$/ }])

  // Keys are escaped as JSON pointers; the first branch too deep is the one named.
  let deep: unknown = []
  for (let level = 2; level < MAX_DATA_DEPTH; level++) deep = { '/~': deep }
  t.same(problemsOf({ event: 'stream.cancelled', data: { streamId: '1', flat: [1, 2, { ok: true }], first: [deep], second: [deep] } }),
    [{ path: '/data/first/0' + '/~1~0'.repeat(MAX_DATA_DEPTH - 2), message: tooDeep }])
  t.match(problemsOf({ event: 'stream.cancelled', data: { ...nested(MAX_DATA_DEPTH + 1), streamId: 'bad id' } }),
    [{ path: path33 }], 'depth is checked first: the rest of so deep a body is not looked at')
})

t.test('problems are looked for only as far as they are reported', async t => {
  // Reads of the users, to see how far the validation went: TypeBox's Errors() is an iterator.
  let reads = 0
  const users = new Proxy(Array(100_000).fill('not an account'), {
    get (target, key, receiver) {
      if (typeof key === 'string' && /^\d+$/.test(key)) reads++
      return Reflect.get(target, key, receiver)
    }
  })
  const result = validateEnvelope({ event: 'stream.completed', data: { streamId: '1' }, users })
  t.match(result, { ok: false, more: true })
  t.equal(result.ok ? 0 : result.problems.length, MAX_PROBLEMS, `the first ${MAX_PROBLEMS}`)
  t.ok(reads <= MAX_PROBLEMS + 1, `${reads} of 100,000 users read`)

  reads = 0
  t.match(validateEnvelope({ event: 'stream.completed', data: { streamId: '1' }, users }, 0), { ok: false, problems: [], more: true }, 'none wanted: none looked for')
  t.equal(reads, 0)
  t.match(validateEnvelope({ event: 'stream.completed', data: { streamId: '1' }, users: ['nope'] }), { ok: false, problems: [{ path: '/users/0' }], more: false })
  t.match(validateEnvelope({ event: 'stream.created', data: { id: '1' } }, 1), { ok: false, problems: [{ path: '/data/sender' }], more: true }, 'in data too')

  const long = validateEnvelope({ event: 'stream.completed', data: { streamId: '1' }, ['x'.repeat(10_000)]: 1 })
  t.match(long, { ok: false, problems: [{ path: '/' + 'x'.repeat(198) + '…' }] }, 'a path is cut at 200 characters')
})
