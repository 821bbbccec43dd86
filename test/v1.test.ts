import t from 'tap'
import { publish, startApp, waitUntil } from './helpers/app.js'
import { nowS, signJwt } from './helpers/jwt.js'
import { connect } from './helpers/raw-socket.js'
import { openStream, subscribe, type StreamClient } from './helpers/sse-client.js'

// The events API under /v1, as FlowFi's frontend calls it: the same routes as at the root, one API.

const cancelled = (streamId: string) => ({ event: 'stream.cancelled', data: { streamId } })
const SECRET = 'a-jwt-secret-for-the-v1-tests-0123456789'
const jwtEnv = { AUTH_MODE: 'jwt', JWT_SECRET: SECRET }
const idsOf = (client: StreamClient) => client.events.map(event => event.id)

/** Status, headers that matter and body bytes of an answer that is not a stream. */
async function answerOf (url: string, init: RequestInit = {}) {
  const response = await fetch(url, init)
  return {
    status: response.status,
    type: response.headers.get('content-type'),
    retryAfter: response.headers.get('retry-after'),
    authenticate: response.headers.get('www-authenticate'),
    body: await response.text()
  }
}

t.test('subscribe, publish and stats over /v1, as FlowFi calls them', async t => {
  const { url, app } = await startApp(t)
  // Read by the stream intake, below Node's parser, as a plain GET of /events/subscribe is.
  const raw = await connect(url)
  t.teardown(() => raw.socket.destroy())
  raw.socket.write('GET /v1/events/subscribe?streams=1&streams=2 HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n')
  await waitUntil('the retry hint', () => raw.received().includes('retry:'))
  t.match(raw.received(), /^HTTP\/1\.1 200 OK\r\n/)
  t.match(raw.received(), /content-type: text\/event-stream; charset=utf-8\r\n/i)
  t.equal(app.streamIntake.direct, 1, 'held by the intake')

  const published = await publish(`${url}/v1`, [cancelled('1'), cancelled('3'), cancelled('2')])
  t.equal(published.status, 202)
  t.equal(published.body.ids.length, 3)
  await waitUntil('both events of its streams', () => raw.received().split('event: stream.cancelled').length === 3)
  t.match(raw.received(), `id: ${published.body.ids[0]}\nevent: stream.cancelled\ndata: {"streamId":"1"}\n`)
  t.notOk(raw.received().includes('"streamId":"3"'), 'not the event of another stream')

  const stats = await fetch(`${url}/v1/events/stats`)
  t.equal(stats.status, 200)
  t.match(await stats.json(), {
    connections: { active: 1, direct: 1, byFilter: { streams: 1 }, opened: 1 },
    events: { published: 3, delivered: 2 }
  }, 'the same counters as /events/stats')

  t.equal((await fetch(`${url}/v1/healthz`)).status, 404, 'health stays at the root')
  t.equal((await fetch(`${url}/v1/metrics`)).status, 404, 'and so do the metrics')
  t.equal((await fetch(`${url}/healthz`)).status, 200)
})

t.test('an event published on either path reaches the streams of both', async t => {
  const { url } = await startApp(t)
  const plain = await subscribe(t, url, 'all=true')
  const v1 = await subscribe(t, `${url}/v1`, 'all=true')
  const { body: { id: first } } = await publish(url, cancelled('a'))
  const { body: { id: second } } = await publish(`${url}/v1`, cancelled('b'))
  await plain.eventCount(2)
  await v1.eventCount(2)
  t.same(idsOf(v1), [first, second], 'published on /events/publish and /v1/events/publish, read on /v1')
  t.same(idsOf(plain), [first, second], 'and on /events/subscribe')
})

t.test('connection caps count /v1 and plain streams together', async t => {
  const perAddress = await startApp(t, { MAX_CONNECTIONS_PER_IP: '2' })
  await subscribe(t, `${perAddress.url}/v1`, 'all=true')
  await subscribe(t, perAddress.url, 'all=true')
  for (const prefix of ['', '/v1']) {
    const refused = await answerOf(`${perAddress.url}${prefix}/events/subscribe?all=true`)
    t.same(refused, {
      status: 429,
      type: 'application/json; charset=utf-8',
      retryAfter: '10',
      authenticate: null,
      body: '{"error":"too_many_per_ip","message":"2 event streams are open from 127.0.0.1 already; close one first"}'
    }, `the third stream, on ${prefix || 'the root'}`)
  }
  t.equal(perAddress.app.connectionLimits.openFrom('127.0.0.1'), 2)

  const instance = await startApp(t, { MAX_CONNECTIONS: '1' })
  await subscribe(t, `${instance.url}/v1`, 'all=true')
  const over = await answerOf(`${instance.url}/events/subscribe?all=true`)
  t.equal(over.status, 503)
  t.match(over.body, /"error":"over_capacity"/)
})

t.test('the subscribe rate limit and the publisher quota are one for both paths', async t => {
  const { url } = await startApp(t, { SUBSCRIBE_RATE_PER_MINUTE: '2', PUBLISH_TOKEN: 'a-publish-token-for-v1-tests', PUBLISH_RATE_PER_SECOND: '500' })
  await subscribe(t, url, 'all=true')
  await subscribe(t, `${url}/v1`, 'all=true')
  for (const prefix of ['', '/v1']) {
    const refused = await fetch(`${url}${prefix}/events/subscribe?all=true`)
    t.equal(refused.status, 429, `a third new stream is refused on ${prefix || 'the root'}`)
    t.match(await refused.json(), { error: 'too_many_requests' })
  }

  const authorization = { authorization: 'Bearer a-publish-token-for-v1-tests' }
  const burst = Array.from({ length: 500 }, (_, i) => cancelled(String(i)))
  t.equal((await publish(url, burst, authorization)).status, 202, 'the whole bucket, on the root')
  // Refilling it takes a second: a batch as large right after finds it empty on either path.
  const refused = await publish(`${url}/v1`, burst, authorization)
  t.equal(refused.status, 429)
  t.equal(refused.body.error, 'publish_rate_exceeded')
})

t.test('a 400 or a 401 over /v1 is the one of the plain path, byte for byte', async t => {
  const open = await startApp(t)
  for (const query of ['all=maybe', 'streams=bad%20id', 'users=GABC', '']) {
    const plain = await answerOf(`${open.url}/events/subscribe?${query}`)
    t.equal(plain.status, 400)
    t.same(await answerOf(`${open.url}/v1/events/subscribe?${query}`), plain, `?${query}`)
  }
  const invalid = { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify([cancelled('1'), { event: 'stream.exploded' }]) }
  const plainInvalid = await answerOf(`${open.url}/events/publish`, invalid)
  t.equal(plainInvalid.status, 400)
  t.same(await answerOf(`${open.url}/v1/events/publish`, invalid), plainInvalid, 'an invalid batch')

  // Read by the intake: the refusal comes on a connection of its own, which then closes.
  const raw = await connect(open.url)
  raw.socket.write('GET /v1/events/subscribe?all=maybe HTTP/1.1\r\nHost: x\r\n\r\n')
  await raw.ended
  t.match(raw.received(), /^HTTP\/1\.1 400 Bad Request\r\n/)
  t.match(raw.received(), /connection: close\r\n/i)
  t.ok(raw.received().endsWith(`\r\n\r\n${(await answerOf(`${open.url}/events/subscribe?all=maybe`)).body}`), 'the same body')

  const secured = await startApp(t, jwtEnv)
  const expired = signJwt({ sub: 'analytics', scopes: ['events:all'], exp: nowS() - 60 }, { alg: 'HS256', secret: SECRET })
  for (const [what, query, headers] of [
    ['no token', 'all=true', {}],
    ['an expired token', 'all=true', { authorization: `Bearer ${expired}` }],
    ['an expired query token', `streams=1&streams=2&access_token=${expired}`, {}]
  ] as Array<[string, string, Record<string, string>]>) {
    const plain = await answerOf(`${secured.url}/events/subscribe?${query}`, { headers })
    t.equal(plain.status, 401)
    t.same(await answerOf(`${secured.url}/v1/events/subscribe?${query}`, { headers }), plain, what)
  }
  const unauthorized = await answerOf(`${secured.url}/events/publish`, { ...invalid, headers: { 'content-type': 'application/json' } })
  t.equal(unauthorized.status, 401)
  t.same(await answerOf(`${secured.url}/v1/events/publish`, { ...invalid, headers: { 'content-type': 'application/json' } }), unauthorized,
    'publishing without a token')
})

t.test('a token opens a /v1 stream as it opens a plain one', async t => {
  const { url } = await startApp(t, jwtEnv)
  const token = signJwt({ sub: 'analytics', scopes: ['events:all'], exp: nowS() + 60 }, { alg: 'HS256', secret: SECRET })
  const client = await subscribe(t, `${url}/v1`, `streams=1&streams=2&access_token=${token}`)
  t.equal(client.status, 200)
})

t.test('resume with Last-Event-ID over /v1', async t => {
  const { url } = await startApp(t)
  const { body: { ids } } = await publish(url, [cancelled('a'), cancelled('a'), cancelled('b'), cancelled('a')])
  const byHeader = await subscribe(t, `${url}/v1`, 'streams=a', { 'last-event-id': ids[0] })
  await byHeader.eventCount(2)
  t.same(idsOf(byHeader), [ids[1], ids[3]], 'what it missed of its stream, in order')
  const byQuery = await subscribe(t, `${url}/v1`, `streams=a&lastEventId=${ids[1]}`)
  await byQuery.eventCount(1)
  t.same(idsOf(byQuery), [ids[3]])
  const { body: { id: live } } = await publish(`${url}/v1`, cancelled('a'))
  await byHeader.eventCount(3)
  t.equal(byHeader.events[2]!.id, live, 'then live')
})

t.test('HEAD, CORS preflight and other forms of the request over /v1, as on the plain path', async t => {
  const { url, app, logs } = await startApp(t, { CORS_ORIGINS: 'https://app.flowfi.xyz' })
  const head = await fetch(`${url}/v1/events/subscribe?all=true`, { method: 'HEAD' })
  t.equal(head.status, 200)
  t.equal(head.headers.get('content-type'), 'text/event-stream; charset=utf-8')
  t.equal(await head.text(), '')
  t.equal((await fetch(`${url}/v1/events/subscribe?all=maybe`, { method: 'HEAD' })).status, 400)
  t.equal(app.broker.metrics.connections.opened, 0, 'a HEAD opens nothing')

  const preflight = await fetch(`${url}/v1/events/subscribe?all=true`, {
    method: 'OPTIONS',
    headers: { origin: 'https://app.flowfi.xyz', 'access-control-request-method': 'GET', 'access-control-request-headers': 'last-event-id' }
  })
  t.equal(preflight.status, 204)
  t.equal(preflight.headers.get('access-control-allow-origin'), 'https://app.flowfi.xyz')
  const stream = await openStream(`${url}/v1/events/subscribe?all=true`, { origin: 'https://app.flowfi.xyz' })
  t.teardown(() => stream.close())
  t.equal(stream.headers['access-control-allow-origin'], 'https://app.flowfi.xyz', 'the grant on the stream')

  // Forms the intake leaves to Node's parser open too, and their connection is the stream's.
  const http10 = await connect(url)
  t.teardown(() => http10.socket.destroy())
  http10.socket.write('GET /v1/events/subscribe?all=true HTTP/1.0\r\nHost: x\r\n\r\n')
  await waitUntil('the HTTP/1.0 stream opens', () => http10.received().includes('retry:'))
  t.match(http10.received(), /^HTTP\/1\.[01] 200 OK\r\n/)
  t.notMatch(http10.received(), /transfer-encoding/i, 'not chunked')
  t.equal(app.streamIntake.direct, 1, 'the CORS stream only: Node\'s parser read the HTTP/1.0 one')

  const other = await fetch(`${url}/v1/events/subscriber`)
  t.equal(other.status, 404, 'another path under /v1 is another path')
  t.same(await other.json(), { error: 'not_found', message: 'no route for GET /v1/events/subscriber' })

  await waitUntil('the open lines', () => logs.filter(line => line.msg === 'stream opened').length === 2)
  const requestLines = logs.filter(line => (line.req as { url?: string } | undefined)?.url?.startsWith('/v1/events/subscribe?'))
  t.same(requestLines, [], 'no request lines on the stream\'s path, as on the plain path')
  t.ok(logs.some(line => (line.req as { url?: string } | undefined)?.url === '/v1/events/subscriber'), 'but for another path')
})
