import { connect } from 'node:net'
import { once } from 'node:events'
import t from 'tap'
import { randomAccountId, startApp } from './helpers/app.js'
import { nowS, signJwt } from './helpers/jwt.js'
import { freePort } from './helpers/redis.js'
import { openStream, subscribe } from './helpers/sse-client.js'

// A browser that sniffs an error body (JSON, or an echoed parameter) as HTML or script could run it.
const NOSNIFF = 'nosniff'
const SECRET = 'an-hs256-secret-that-is-long-enough-for-tests'
const TOKEN = 'publish-token-0123456789'

interface Answer { status: number, nosniff: string | null, body: any }

async function answer (url: string, init: RequestInit = {}): Promise<Answer> {
  const response = await fetch(url, init)
  const text = await response.text()
  return { status: response.status, nosniff: response.headers.get('x-content-type-options'), body: text === '' ? undefined : JSON.parse(text) }
}

const post = (body: string, headers: Record<string, string> = {}): RequestInit =>
  ({ method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body })

/** Sends raw bytes on a new connection; returns the status, headers and body of what comes back before it closes. */
async function rawAnswer (port: number, bytes: string): Promise<Answer & { headers: string }> {
  const socket = connect(port, '127.0.0.1')
  let received = ''
  socket.setEncoding('utf8').on('data', (chunk: string) => { received += chunk })
  await once(socket, 'connect')
  socket.write(bytes)
  await once(socket, 'close')
  const [head = '', body = ''] = received.split('\r\n\r\n')
  return {
    status: Number(/^HTTP\/1\.1 (\d{3}) /.exec(head)?.[1]),
    headers: head,
    nosniff: /^x-content-type-options: (.*)$/im.exec(head)?.[1] ?? null,
    body: JSON.parse(body)
  }
}

t.test('every error answer of the main port carries x-content-type-options: nosniff', async t => {
  const { url } = await startApp(t, { PUBLISH_TOKEN: TOKEN, MAX_CONNECTIONS_PER_IP: '1', MAX_CONNECTIONS: '2' })
  const auth = { authorization: `Bearer ${TOKEN}` }
  const cases: Array<[string, Promise<Answer>, number]> = [
    ['404 handler', answer(`${url}/nowhere`), 404],
    ['error handler: a body that is not JSON', answer(`${url}/events/publish`, post('{', auth)), 400],
    ['error handler: not JSON at all', answer(`${url}/events/publish`, { ...post('x', auth), headers: { ...auth, 'content-type': 'text/html' } }), 415],
    ['publish: an empty batch', answer(`${url}/events/publish`, post('[]', auth)), 400],
    ['publish: no token', answer(`${url}/events/publish`, post('[]')), 401],
    ['subscribe: a bad filter', answer(`${url}/events/subscribe?users=nope`), 400],
    ['a URL Fastify cannot decode', answer(`${url}/events/%zz`), 400]
  ]
  for (const [name, pending, status] of cases) t.match(await pending, { status, nosniff: NOSNIFF, body: { error: String, message: String } }, name)

  await subscribe(t, url, 'all=true')
  t.match(await answer(`${url}/events/subscribe?all=true`), { status: 429, nosniff: NOSNIFF, body: { error: 'too_many_per_ip' } },
    'subscribe: too many streams from one address')
  const other = await openStream(`${url}/events/subscribe?all=true`, {}, '127.0.0.2')
  t.teardown(() => other.close())
  const third = await openStream(`${url}/events/subscribe?all=true`, {}, '127.0.0.3')
  third.close()
  t.match({ status: third.status, nosniff: third.headers['x-content-type-options'] }, { status: 503, nosniff: NOSNIFF },
    'subscribe: the instance is full')

  t.equal(other.headers['x-content-type-options'], NOSNIFF, 'an event stream has it too: it is on every answer')
  t.equal((await answer(`${url}/healthz`)).nosniff, NOSNIFF, 'as is any other success')
})

t.test('with tokens: 401 and 403 from subscribe and publish carry it', async t => {
  const { url } = await startApp(t, { AUTH_MODE: 'jwt', JWT_SECRET: SECRET })
  const alice = signJwt({ sub: randomAccountId(), exp: nowS() + 60 }, { alg: 'HS256', secret: SECRET })
  const bearer = { authorization: `Bearer ${alice}` }
  const event = JSON.stringify({ event: 'stream.cancelled', data: { streamId: '1' } })
  t.match(await answer(`${url}/events/subscribe?all=true`), { status: 401, nosniff: NOSNIFF })
  t.match(await answer(`${url}/events/subscribe?users=${randomAccountId()}`, { headers: bearer }), { status: 403, nosniff: NOSNIFF })
  t.match(await answer(`${url}/events/publish`, post(event)), { status: 401, nosniff: NOSNIFF })
  t.match(await answer(`${url}/events/publish`, post(event, bearer)), { status: 403, nosniff: NOSNIFF })
})

t.test("the rate limiter's 429 carries it", async t => {
  const { url } = await startApp(t, { RATE_LIMIT_PER_MINUTE: '1' })
  t.equal((await answer(`${url}/events/stats`)).status, 200)
  t.match(await answer(`${url}/events/stats`), { status: 429, nosniff: NOSNIFF, body: { error: String, message: String } })
})

t.test('a malformed HTTP request gets a JSON 400 with it, an oversized head a 431; then the connection closes', async t => {
  const { app, url } = await startApp(t)
  const { port } = new URL(url)
  const garbage = await rawAnswer(Number(port), 'garbage\r\n\r\n')
  t.match(garbage, { status: 400, nosniff: NOSNIFF, body: { error: 'bad_request', message: 'malformed HTTP request' } })
  t.match(garbage.headers, /^content-type: application\/json$/im)
  t.match(garbage.headers, /^connection: close$/im)
  const oversized = await rawAnswer(Number(port), `GET /healthz HTTP/1.1\r\nHost: x\r\nx-big: ${'x'.repeat(20_000)}\r\n\r\n`)
  t.match(oversized, { status: 431, nosniff: NOSNIFF, body: { error: 'request_header_fields_too_large', message: /over the size limit/ } })
  t.equal((await answer(`${url}/healthz`)).status, 200, 'the server is fine')
  t.ok(app.server.listening)
})

t.test('a client that resets its connection mid-request is let go, and the server carries on', async t => {
  const { url, logs } = await startApp(t)
  const before = logs.length
  // Reset while idle (Node reports ECONNRESET on a destroyed socket), and in the middle of a head.
  for (const partial of ['', 'GET /healthz HTTP/1.1\r\nHo']) {
    const socket = connect(Number(new URL(url).port), '127.0.0.1')
    await once(socket, 'connect')
    socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')
    await once(socket, 'data') // the connection is Node's HTTP server's now, kept alive
    if (partial !== '') socket.write(partial)
    socket.resetAndDestroy()
    await once(socket, 'close')
  }
  t.equal((await answer(`${url}/healthz`)).status, 200)
  t.notOk(logs.slice(before).some(line => Number(line.level) >= 40), 'nothing to warn about')
})

t.test('the metrics listener: its 404 and its answer to a malformed request carry it', async t => {
  const metricsPort = await freePort()
  await startApp(t, { METRICS_PORT: String(metricsPort) })
  t.match(await answer(`http://127.0.0.1:${metricsPort}/nowhere`), { status: 404, nosniff: NOSNIFF, body: { error: 'not_found' } })
  t.match(await rawAnswer(metricsPort, 'garbage\r\n\r\n'), { status: 400, nosniff: NOSNIFF, body: { error: 'bad_request' } })
  t.equal((await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).status, 200)
})
