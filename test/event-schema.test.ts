import t from 'tap'
import { randomBytes } from 'node:crypto'
import { MAX_DATA_DEPTH, MAX_PROBLEMS, routeOf, streamIdOf, validateEnvelope, type Envelope } from '../services/event-schema.js'
import { EVENT_TYPES, EXAMPLE_DATA } from '../services/protocol.js'
import { encodeStellarContract } from '../services/stellar-key.js'
import { randomAccountId } from './helpers/app.js'

const sender = randomAccountId()
const recipient = randomAccountId()
const contract = encodeStellarContract(randomBytes(32))
const U64_MAX = '18446744073709551615'

const valid: Envelope[] = [
  { event: 'stream.created', data: { id: '42', sender, recipient, ratePerSecond: '0.001', token: 'USDC' } },
  { event: 'stream.created', data: { id: 7, sender, recipient } },
  { event: 'stream.topped_up', data: { streamId: '42', amount: '123456789012345678901234567890.123456789' } },
  { event: 'stream.withdrawn', data: { streamId: 'a_B-9', amount: 9007199254740991 } },
  { event: 'stream.cancelled', data: { streamId: '42' } },
  { event: 'stream.completed', data: { streamId: '42' }, users: [sender] }
]

t.test('accepts the seed\'s event shapes, passing extra fields through', async t => {
  for (const envelope of valid) {
    const result = validateEnvelope(envelope)
    t.ok(result.ok, envelope.event)
    if (result.ok) t.same(result.envelope, envelope)
  }
})

t.test('the protocol module\'s example of each type is valid, and every type has one', async t => {
  t.same(Object.keys(EXAMPLE_DATA).sort(), [...EVENT_TYPES].sort())
  for (const type of EVENT_TYPES) {
    const result = validateEnvelope({ event: type, data: EXAMPLE_DATA[type] })
    t.ok(result.ok, `${type}: ${result.ok ? 'valid' : JSON.stringify(result.problems)}`)
  }
})

function problemsOf (value: unknown): Array<{ path: string, message: string }> {
  const result = validateEnvelope(value)
  return result.ok ? [] : result.problems
}

t.test('names what is wrong and where', async t => {
  t.same(problemsOf(7), [{ path: '/', message: 'Expected object' }])
  t.match(problemsOf({ event: 'stream.exploded', data: {} }), [{ path: '/event', message: /must be one of stream.created, / }])
  t.match(problemsOf({ event: 'stream.cancelled', data: [] }), [{ path: '/data', message: 'must be a JSON object' }])
  t.match(problemsOf({ event: 'stream.cancelled', data: { streamId: '1' }, extra: 1 }), [{ path: '/extra' }])
  t.match(problemsOf({ event: 'stream.created', data: { id: '1', recipient } }), [{ path: '/data/sender', message: 'is required' }])
  t.match(problemsOf({ event: 'stream.created', data: { id: '1', sender: 'GABC', recipient } }),
    [{ path: '/data/sender', message: /Stellar account \(G…\) or contract/ }])
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

/** The FlowFi backend's payloads (backend/src/workers/soroban-event-worker.ts), one of each type. */
const chain = { transactionHash: 'ab'.repeat(32), ledger: 123456, timestamp: 1767225600 }
const backend: Envelope[] = [
  { event: 'stream.created', data: { streamId: 12, sender, recipient, tokenAddress: contract, ratePerSecond: '1000', depositedAmount: '86400000', startTime: 1767225600, ...chain } },
  { event: 'stream.topped_up', data: { streamId: 12, amount: '5000', newDepositedAmount: '86405000', ...chain } },
  { event: 'stream.withdrawn', data: { streamId: 12, recipient, amount: '170141183460469231731687303715884105727', ...chain } },
  { event: 'stream.cancelled', data: { streamId: 12, refundedAmount: '10', amountWithdrawn: '0', ...chain } },
  { event: 'stream.completed', data: { streamId: 12, recipient, totalWithdrawn: '86405000', ...chain } },
  { event: 'stream.paused', data: { streamId: 12, sender, pausedAt: 1767225700, ...chain } },
  { event: 'stream.resumed', data: { streamId: U64_MAX, sender, newEndTime: U64_MAX, ...chain } },
  { event: 'stream.fee_collected', data: { streamId: 12, treasury: sender, feeAmount: '25', token: contract, ...chain } },
  { event: 'stream.fee_config_updated', data: { admin: sender, oldTreasury: sender, newTreasury: contract, oldFeeRateBps: 25, newFeeRateBps: 30, ...chain } },
  { event: 'stream.admin_transferred', data: { previousAdmin: sender, newAdmin: contract, ...chain } }
]

t.test('every type the FlowFi backend sends, with its fields, is valid as it sends it', async t => {
  t.same(backend.map(e => e.event), EVENT_TYPES, 'one of each type')
  for (const envelope of backend) t.same(validateEnvelope(envelope), { ok: true, envelope }, envelope.event)
  // Only what routing needs is required: the seed's publishers send fewer fields.
  for (const event of EVENT_TYPES.slice(1, 8)) t.ok(validateEnvelope({ event, data: { streamId: '1' } }).ok, `${event} with only a streamId`)
  for (const event of EVENT_TYPES.slice(8)) t.ok(validateEnvelope({ event, data: {} }).ok, `${event} with no field`)
  for (const event of EVENT_TYPES.slice(1, 8)) {
    t.match(problemsOf({ event, data: { amount: '1' } }), [{ path: '/data/streamId', message: 'is required' }], `${event} needs its stream`)
  }
})

t.test('the listed fields are checked when present; others pass untouched', async t => {
  const cases: Array<[string, Record<string, unknown>, string, RegExp]> = [
    ['stream.created', { streamId: 1, sender, recipient, tokenAddress: 'USDC' }, '/data/tokenAddress', /contract \(C…\) address/],
    ['stream.created', { streamId: 1, sender, recipient, depositedAmount: '-5' }, '/data/depositedAmount', /decimal string/],
    ['stream.created', { streamId: 1, sender, recipient, startTime: '1.5' }, '/data/startTime', /non-negative integer/],
    ['stream.topped_up', { streamId: 1, newDepositedAmount: 1e100 }, '/data/newDepositedAmount', /decimal string/],
    ['stream.withdrawn', { streamId: 1, recipient: sender.slice(0, -1) + (sender.endsWith('A') ? 'B' : 'A') }, '/data/recipient', /checksum/],
    ['stream.cancelled', { streamId: 1, refundedAmount: '' }, '/data/refundedAmount', /decimal string/],
    ['stream.completed', { streamId: 1, totalWithdrawn: true }, '/data/totalWithdrawn', /decimal string/],
    ['stream.paused', { streamId: 1, sender: 'G' }, '/data/sender', /Stellar account/],
    ['stream.paused', { streamId: 1, pausedAt: -1 }, '/data/pausedAt', /non-negative integer/],
    ['stream.resumed', { streamId: 1, newEndTime: '184467440737095516150' }, '/data/newEndTime', /non-negative integer/],
    ['stream.fee_collected', { streamId: 1, token: 'XLM' }, '/data/token', /address/],
    ['stream.fee_config_updated', { newFeeRateBps: 2 ** 32 }, '/data/newFeeRateBps', /0 to 4294967295/],
    ['stream.fee_config_updated', { admin: 42 }, '/data/admin', /address/],
    ['stream.admin_transferred', { newAdmin: 'nobody' }, '/data/newAdmin', /address/]
  ]
  for (const [event, data, path, message] of cases) t.match(problemsOf({ event, data }), [{ path, message }], `${event} ${path}`)
  const untouched = { streamId: 1, transactionHash: 42, ledger: 'any', memo: { nested: [null] } }
  t.same(validateEnvelope({ event: 'stream.paused', data: untouched }), { ok: true, envelope: { event: 'stream.paused', data: untouched } })
})

t.test('stream.created names its stream streamId (the backend) or id (the seed), the same if both', async t => {
  t.ok(validateEnvelope({ event: 'stream.created', data: { streamId: '9', id: 9, sender, recipient } }).ok, 'both, the same stream')
  t.same(problemsOf({ event: 'stream.created', data: { sender, recipient } }), [{ path: '/data/streamId', message: 'is required (or id)' }])
  t.same(problemsOf({ event: 'stream.created', data: { streamId: '9', id: '10', sender, recipient } }),
    [{ path: '/data/id', message: 'must name the same stream as streamId' }])
  t.equal(streamIdOf(backend[0]!), '12', 'a JSON number routes as its decimal string')
  t.equal(streamIdOf(backend[6]!), U64_MAX, 'a u64 past 2^53 comes, and routes, as a string')
  t.match(problemsOf(JSON.parse(`{"event":"stream.paused","data":{"streamId":${U64_MAX}}}`)), [{ path: '/data/streamId' }],
    'a u64 past 2^53 as a JSON number has lost its digits: refused')
})

t.test('routing: a stream and its participants, no stream for admin events, only the addressees for `to`', async t => {
  t.same(routeOf(backend[0]!), { streamId: '12', accounts: [sender, recipient] }, 'created: sender and recipient take part')
  t.same(routeOf({ event: 'stream.paused', data: { streamId: 12, sender }, users: [recipient] }), { streamId: '12', accounts: [recipient] },
    'users name participants; address fields in data route nothing')
  t.same(routeOf(backend[8]!), { streamId: undefined, accounts: [] }, 'an admin event has no stream')
  t.same(routeOf({ ...backend[7]!, to: [contract] }), { streamId: undefined, accounts: [contract] }, 'to: the addressees only, not the stream')
  t.same(problemsOf({ event: 'stream.cancelled', data: { streamId: 1 }, users: [sender], to: [recipient] }),
    [{ path: '/to', message: 'cannot come with users: users names participants of the stream, to addresses the event to accounts only' }])
  t.match(problemsOf({ event: 'stream.cancelled', data: { streamId: 1 }, to: ['nobody'] }), [{ path: '/to/0' }])
  t.match(problemsOf({ event: 'stream.cancelled', data: { streamId: 1 }, to: Array(17).fill(sender) }), [{ path: '/to', message: 'must list 1 to 16 accounts' }])
  t.match(problemsOf({ event: 'stream.cancelled', data: { streamId: 1 }, to: [] }), [{ path: '/to', message: 'must list 1 to 16 accounts' }])
})
