import t from 'tap'
import { publish, randomAccountId, startApp } from './helpers/app.js'
import { subscribe } from './helpers/sse-client.js'

const TOKEN = 'test-publish-token-0123456789'
const cancelled = (streamId: string) => ({ event: 'stream.cancelled', data: { streamId } })

t.test('one envelope gets one id; a batch gets an id each, increasing', async t => {
  const { url } = await startApp(t)
  const single = await publish(url, cancelled('1'))
  t.equal(single.status, 202)
  t.match(single.body, { id: /^\d+-\d+$/ })

  const batch = await publish(url, [cancelled('1'), cancelled('2'), cancelled('3')])
  t.equal(batch.status, 202)
  t.equal(batch.body.ids.length, 3)
  const asPairs = (batch.body.ids as string[]).map(id => id.split('-').map(BigInt) as [bigint, bigint])
  for (let i = 1; i < asPairs.length; i++) {
    const [ms, seq] = asPairs[i]!
    const [prevMs, prevSeq] = asPairs[i - 1]!
    t.ok(ms > prevMs || (ms === prevMs && seq > prevSeq), 'strictly increasing')
  }
})

t.test('an invalid batch names every invalid item and publishes nothing', async t => {
  const { url, app } = await startApp(t)
  const client = await subscribe(t, url, 'all=true')
  const { status, body } = await publish(url, [
    cancelled('1'),
    { event: 'stream.withdrawn', data: { streamId: '1', amount: 1.5 } },
    cancelled('2'),
    { event: 'stream.exploded', data: {} }
  ])
  t.equal(status, 400)
  t.match(body, {
    error: 'invalid_event',
    message: '2 of 4 events are invalid, so none was published; first: [1]/data/amount must be a non-negative decimal string such as "12.5" or a safe integer',
    invalid: [
      { index: 1, problems: [{ path: '/data/amount' }], moreProblems: false },
      { index: 3, problems: [{ path: '/event' }], moreProblems: false }
    ],
    invalidEvents: 2,
    unlistedEvents: 0
  })
  t.equal(app.broker.stats().published.total, 0)
  await publish(url, cancelled('after'))
  const [event] = await client.eventCount(1)
  t.equal(JSON.parse(event!.data).streamId, 'after', 'the first event the subscriber sees is the later valid one')
})

t.test('a single invalid envelope says where', async t => {
  const { url } = await startApp(t)
  const { status, body } = await publish(url, { event: 'stream.created', data: { id: '1', sender: randomAccountId() } })
  t.equal(status, 400)
  t.equal(body.message, '1 of 1 events are invalid, so none was published; first: /data/recipient is required')
})

t.test('batch size, JSON syntax, content type and body size', async t => {
  const { url } = await startApp(t, { MAX_PUBLISH_BATCH: '2' })
  t.match(await publish(url, []), { status: 400, body: { error: 'invalid_batch', message: 'a batch holds 1 to 2 events; this one has 0' } })
  t.match(await publish(url, [cancelled('1'), cancelled('2'), cancelled('3')]),
    { status: 400, body: { error: 'invalid_batch', message: /this one has 3/ } })
  t.match(await publish(url, '{"event": '), { status: 400, body: { error: 'bad_request', message: /JSON/ } })
  t.match(await publish(url, '{"__proto__": {"x": 1}, "event": "stream.cancelled", "data": {"streamId": "1"}}'),
    { status: 400, body: { error: 'bad_request' } })

  const text = await fetch(`${url}/events/publish`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hi' })
  t.equal(text.status, 415)
  t.match(await text.json(), { error: 'unsupported_media_type', message: 'content-type must be application/json (got text/plain)' })
  const untyped = await fetch(`${url}/events/publish`, { method: 'POST', body: new TextEncoder().encode('{}') })
  t.equal(untyped.status, 415)
  t.match(await untyped.json(), { error: 'unsupported_media_type', message: 'content-type must be application/json (got none)' })

  const huge = await publish(url, { event: 'stream.cancelled', data: { streamId: '1', pad: 'x'.repeat(2 * 1024 * 1024) } })
  t.match(huge, { status: 413, body: { error: 'payload_too_large' } })
})

t.test('PUBLISH_TOKEN requires a matching bearer token', async t => {
  const { url } = await startApp(t, { PUBLISH_TOKEN: TOKEN })
  for (const authorization of [undefined, 'Bearer wrong', `Basic ${TOKEN}`, `Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(1)}`]) {
    const response = await publish(url, cancelled('1'), authorization === undefined ? {} : { authorization })
    t.equal(response.status, 401, String(authorization))
    t.match(response.body, { error: 'unauthorized', message: /Authorization: Bearer/ })
    t.notMatch(JSON.stringify(response.body), TOKEN, 'the token is never echoed')
  }
  t.equal((await publish(url, cancelled('1'), { authorization: `Bearer ${TOKEN}` })).status, 202)
  t.equal((await publish(url, cancelled('1'), { authorization: `bearer   ${TOKEN}` })).status, 202, 'scheme is case-insensitive')

  const raw = await fetch(`${url}/events/publish`, { method: 'POST' })
  t.equal(raw.headers.get('www-authenticate'), 'Bearer realm="flowfi-events"')
})

t.test('production without PUBLISH_TOKEN serves no publish endpoint and says why', async t => {
  const { url, logs } = await startApp(t, { NODE_ENV: 'production', AUTH_MODE: 'off' })
  const response = await publish(url, cancelled('1'))
  t.equal(response.status, 404)
  t.match(response.body, { error: 'not_found', message: 'no route for POST /events/publish' })
  t.ok(logs.some(line => line.level === 40 && /PUBLISH_TOKEN/.test(String(line.msg))), 'a warning at start-up')
})

t.test('production with PUBLISH_TOKEN publishes', async t => {
  const { url } = await startApp(t, { NODE_ENV: 'production', AUTH_MODE: 'off', PUBLISH_TOKEN: TOKEN })
  t.equal((await publish(url, cancelled('1'), { authorization: `Bearer ${TOKEN}` })).status, 202)
  t.equal((await publish(url, cancelled('1'))).status, 401)
})

/** The bytes of an envelope whose `data` nests `levels` deep (itself the first), as a publisher would send them. */
function nestedBody (levels: number, array: boolean): string {
  const [open, close] = array ? ['[', ']'] : ['{"a":', '}']
  return `{"event":"stream.cancelled","data":{"streamId":"1","x":${open.repeat(levels - 1)}1${close.repeat(levels - 1)}}}`
}

t.test('data nested too deep is a 400 that says where, whatever the depth, and publishes nothing', async t => {
  const { url, app } = await startApp(t)
  const client = await subscribe(t, url, 'all=true')
  t.equal((await publish(url, nestedBody(32, false))).status, 202, '32 levels are fine')
  for (const levels of [33, 5000, 100_000]) {
    for (const array of [false, true]) {
      const { status, body } = await publish(url, nestedBody(levels, array))
      t.equal(status, 400, `${levels} levels (array: ${array})`)
      t.same(body.invalid, [{
        index: 0,
        problems: [{ path: '/data/x' + (array ? '/0' : '/a').repeat(31), message: 'nests objects and arrays more than 32 levels deep' }],
        moreProblems: false
      }])
    }
  }
  const batch = await publish(url, `[${JSON.stringify(cancelled('before'))},${nestedBody(5000, false)}]`)
  t.match(batch, { status: 400, body: { error: 'invalid_event', invalid: [{ index: 1 }] } })
  t.equal(app.broker.stats().published.total, 1, 'only the 32 levels, none of the refused batch')
  await publish(url, cancelled('after'))
  const events = await client.eventCount(2)
  t.same(events.map(event => JSON.parse(event.data).streamId), ['1', 'after'])
})

t.test('a failure other than Redis is a 500 that echoes nothing, and is logged', async t => {
  const { url, app, logs } = await startApp(t)
  // No real input makes the in-memory fan-out fail now: this stands for a bug.
  app.fanout.publish = async () => { throw new Error('secret internals') }
  const { status, body } = await publish(url, cancelled('1'))
  t.equal(status, 500)
  t.same(body, { error: 'internal_server_error', message: 'internal error; see the server log' })
  t.ok(logs.some(line => line.msg === 'request failed' && (line.err as any)?.message === 'secret internals'))
})

t.test('the report of an invalid body is bounded, however much is wrong with it', async t => {
  const { url } = await startApp(t)
  const many = Array.from({ length: 500 }, () => ({
    event: 'stream.created',
    data: { id: 'bad id', sender: 'x', recipient: 'y', pad: 'p'.repeat(1000) },
    users: Array(16).fill('nope'),
    ...Object.fromEntries(Array.from({ length: 40 }, (_, k) => [`extra${k}`, 0]))
  }))
  const cases: Array<[string, unknown, number, boolean]> = [
    ['500 events, each with many problems', many, 500, true],
    ['one event with 200,000 invalid users', { ...cancelled('1'), users: Array(200_000).fill('x') }, 1, true],
    ['one event with 60,000 unknown fields', { ...cancelled('1'), ...Object.fromEntries(Array.from({ length: 60_000 }, (_, k) => [`k${k}`, 0])) }, 1, true],
    // Paths are cut short, however their characters are written in JSON.
    ['a 900 KB field name', { ...cancelled('1'), ['k'.repeat(900_000)]: 1 }, 1, false],
    ['field names that JSON escapes', Array.from({ length: 80 }, () => ({ ...cancelled('1'), ['\u0001'.repeat(1000)]: 1, ['😀'.repeat(1000)]: 1 })), 80, false]
  ]
  for (const [what, value, invalidEvents, moreProblems] of cases) {
    const bytes = JSON.stringify(value)
    t.ok(Buffer.byteLength(bytes) < 1024 * 1024, `${what}: the body fits (${Buffer.byteLength(bytes)} bytes)`)
    const response = await fetch(`${url}/events/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: bytes })
    const text = await response.text()
    t.equal(response.status, 400, what)
    t.ok(Buffer.byteLength(text) <= 16 * 1024, `${what}: ${Buffer.byteLength(text)} bytes of report`)
    const body = JSON.parse(text)
    t.match(body, { error: 'invalid_event', message: new RegExp(`^${invalidEvents} of ${invalidEvents} events are invalid`), invalidEvents })
    t.equal(body.invalid[0].index, 0, `${what}: the first invalid event is listed`)
    t.ok(body.invalid[0].problems.length >= 1 && body.invalid[0].problems.length <= 10, `${what}: at most 10 problems an event`)
    t.equal(body.invalid[0].moreProblems, moreProblems, `${what}: and whether it has more`)
    t.equal(body.invalid.length + body.unlistedEvents, invalidEvents, `${what}: the events left out are counted`)
    const paths = (body.invalid as any[]).flatMap(({ problems }) => problems.map((problem: any) => problem.path as string))
    t.ok(paths.every(path => path.length <= 200), `${what}: a path is at most 200 characters`)
  }
})
