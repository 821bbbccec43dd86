import http from 'node:http'
import net from 'node:net'
import t from 'tap'
import { openStream, subscribe } from './helpers/sse-client.js'
import { randomAccountId, startApp, waitUntil } from './helpers/app.js'
import { nowS, signJwt } from './helpers/jwt.js'

t.test('opens an event stream with the right headers and a retry hint first', async t => {
  const { url } = await startApp(t, { RETRY_MS: '2500' })
  const client = await subscribe(t, url, 'streams=1')
  t.equal(client.status, 200)
  t.equal(client.headers['content-type'], 'text/event-stream; charset=utf-8')
  t.equal(client.headers['cache-control'], 'no-cache, no-transform')
  t.equal(client.headers['x-accel-buffering'], 'no')
  t.equal(client.headers.connection, 'close', 'the connection ends with the stream, and says so')
  t.equal(client.headers['content-length'], undefined, 'no length: the stream has no end')
  t.equal(client.raw, 'retry: 2500\n\n', 'the retry hint is written at once')
})

t.test('bad subscriptions get a 400 with a JSON body and nothing is held open', async t => {
  const { url, app } = await startApp(t, { MAX_FILTERS: '3' })
  const user = randomAccountId()
  const cases: Array<[string, string, RegExp]> = [
    ['', 'missing_filter', /streams=<id>, users=<G...> or all=true/],
    ['all=false', 'missing_filter', /subscribe to something/],
    ['foo=bar', 'missing_filter', /subscribe to something/],
    ['streams=', 'invalid_stream', /streams="" is not a stream id/],
    ['streams=a%20b', 'invalid_stream', /streams="a b"/],
    [`streams=${'x'.repeat(65)}`, 'invalid_stream', /stream id/],
    ['users=GABC', 'invalid_user', /users="GABC" is not a Stellar account id/],
    [`users=${user.slice(0, -1)}${user.endsWith("A") ? "B" : "A"}`, 'invalid_user', /valid checksum/],
    ['all=yes', 'invalid_all', /all="yes" is not allowed/],
    ['all=true&all=true', 'invalid_all', /once/],
    [`streams=1&streams=2&users=${user}&streams=3`, 'too_many_filters', /4 streams and users filters given; at most 3/]
  ]
  for (const [query, error, message] of cases) {
    const response = await fetch(`${url}/events/subscribe?${query}`)
    t.equal(response.status, 400, query)
    t.match(response.headers.get('content-type'), /^application\/json/)
    t.match(await response.json(), { error, message }, query)
  }
  t.equal(app.broker.stats().connections.total, 0, 'no connection registered')
})

t.test('at the filter limit is still fine; duplicates collapse', async t => {
  const { url, app } = await startApp(t, { MAX_FILTERS: '3' })
  await subscribe(t, url, `streams=1&streams=1&users=${randomAccountId()}&all=true`)
  t.match(app.broker.stats().connections, { total: 1, all: 1, streams: 1, users: 1 })
})

t.test('a client that goes away is removed', async t => {
  const { url, app } = await startApp(t)
  const client = await subscribe(t, url, 'all=true')
  t.equal(app.broker.stats().connections.total, 1)
  client.close()
  await waitUntil('the stream is removed', () => app.broker.stats().connections.total === 0)
  t.pass('removed after the socket closed')
})

t.test('one shared timer sends heartbeats to every open stream', async t => {
  const { url } = await startApp(t, { HEARTBEAT_MS: '50' })
  const clients = await Promise.all(['streams=1', 'all=true', 'streams=2'].map(q => subscribe(t, url, q)))
  for (const client of clients) await client.until('two heartbeats', () => client.comments.length >= 2)
  for (const client of clients) t.match(client.raw, /^retry: \d+\n\n: ping\n\n: ping\n\n/)
})

t.test('a keep-alive client never reuses a stream\'s connection: its next request goes out on a new one', async t => {
  const { url } = await startApp(t, { MAX_STREAM_AGE_MS: '1000' })
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => agent.destroy())
  const get = (path: string) => new Promise<{ response: http.IncomingMessage, body: string, reused: boolean }>((resolve, reject) => {
    const request = http.get(`${url}${path}`, { agent }, response => {
      let body = ''
      response.setEncoding('utf8').on('data', chunk => { body += chunk })
      response.on('end', () => resolve({ response, body, reused: request.reusedSocket }))
    }).on('error', reject)
  })
  const stream = await get('/events/subscribe?streams=1')
  t.equal(stream.response.headers.connection, 'close')
  t.ok(stream.response.complete, 'its age ended the stream cleanly')
  t.match(stream.body, /retry: \d+\n\n$/)
  const next = await get('/healthz')
  t.equal(next.response.statusCode, 200, 'the next request on the same agent succeeds at its first try')
  t.notOk(next.reused, 'on a new connection, not the one the server closed')
})

t.test('HTTP/1.0 clients get no keep-alive header', async t => {
  const { url } = await startApp(t)
  const { port } = new URL(url)
  const socket = net.connect(Number(port), '127.0.0.1')
  t.teardown(() => socket.destroy())
  socket.write('GET /events/subscribe?all=true HTTP/1.0\r\nHost: x\r\n\r\n')
  let head = ''
  for await (const chunk of socket) {
    head += String(chunk)
    if (head.includes('retry:')) break
  }
  t.match(head, /^HTTP\/1\.[01] 200 OK\r\n/)
  t.match(head, /content-type: text\/event-stream; charset=utf-8\r\n/i)
  t.notMatch(head, /connection: keep-alive/i)
})

t.test('closing the app ends open streams instead of waiting for them', async t => {
  const { url, app } = await startApp(t)
  const client = await openStream(`${url}/events/subscribe?all=true`)
  await client.until('the retry hint', () => client.retry !== undefined)
  await app.close()
  await client.until('the end of the stream', () => client.ended)
  t.ok(client.ended)
})

t.test('HEAD answers with the stream\'s head and holds nothing open; it is checked as a GET would be', async t => {
  const { url, app } = await startApp(t, { AUTH_MODE: 'jwt', JWT_SECRET: 'a-jwt-secret-for-tests-0123456789' })
  const token = signJwt({ sub: 'analytics', scopes: ['events:all'], exp: nowS() + 60 }, { alg: 'HS256', secret: 'a-jwt-secret-for-tests-0123456789' })
  const ok = await fetch(`${url}/events/subscribe?all=true`, { method: 'HEAD', headers: { authorization: `Bearer ${token}` } })
  t.equal(ok.status, 200)
  t.equal(ok.headers.get('content-type'), 'text/event-stream; charset=utf-8')
  t.equal(await ok.text(), '', 'no body')
  t.equal((await fetch(`${url}/events/subscribe?all=maybe`, { method: 'HEAD' })).status, 400)
  t.equal((await fetch(`${url}/events/subscribe?all=true`, { method: 'HEAD' })).status, 401, 'no token: refused as a GET is')
  const stats = app.broker.stats().connections
  t.equal(stats.total + stats.replaying, 0, 'no stream was opened')
  t.equal(app.broker.metrics.connections.opened, 0)
})
