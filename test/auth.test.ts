import { generateKeyPairSync } from 'node:crypto'
import t from 'tap'
import { publish, randomAccountId, startApp, waitUntil } from './helpers/app.js'
import { nowS, signJwt } from './helpers/jwt.js'
import { openStream, subscribe } from './helpers/sse-client.js'

const SECRET = 'an-hs256-secret-that-is-long-enough-for-tests'
const HS = { alg: 'HS256' as const, secret: SECRET }
const alice = randomAccountId()
const bob = randomAccountId()
const carol = randomAccountId()
const jwtEnv = { AUTH_MODE: 'jwt', JWT_SECRET: SECRET }

async function refusal (url: string, query: string, headers: Record<string, string> = {}): Promise<{ status: number, body: any }> {
  const response = await fetch(`${url}/events/subscribe?${query}`, { headers })
  return { status: response.status, body: await response.json() }
}
const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

t.test('401 for a missing or bad token, saying which rule failed and never echoing the token', async t => {
  const { url, logs } = await startApp(t, { ...jwtEnv, JWT_ISSUER: 'https://id.flowfi.xyz', JWT_AUDIENCE: 'flowfi-events', JWT_CLOCK_TOLERANCE_S: '0' })
  const good = { sub: alice, iss: 'https://id.flowfi.xyz', aud: 'flowfi-events', exp: nowS() + 60 }
  const cases: Array<[string, string | undefined, string, RegExp]> = [
    ['no token', undefined, 'missing_token', /no token: send Authorization: Bearer <token>, the flowfi_token cookie, or the access_token or token query parameter/],
    ['bad signature', signJwt(good, { alg: 'HS256', secret: `${SECRET}-not` }), 'invalid_signature', /signature/],
    ['alg none', signJwt(good, { alg: 'none' }), 'invalid_algorithm', /refused/],
    ['expired', signJwt({ ...good, exp: nowS() - 10 }, HS), 'token_expired', /expired/],
    ['wrong issuer', signJwt({ ...good, iss: 'https://evil.example' }, HS), 'invalid_claim', /iss/],
    ['wrong audience', signJwt({ ...good, aud: 'someone-else' }, HS), 'invalid_claim', /aud/],
    ['not a JWT', 'not-a-token', 'invalid_token', /refused/]
  ]
  for (const [name, token, error, message] of cases) {
    const { status, body } = await refusal(url, `users=${alice}`, token === undefined ? {} : bearer(token))
    t.equal(status, 401, name)
    t.match(body, { error, message }, name)
    if (token !== undefined) t.notOk(JSON.stringify(body).includes(token), `${name}: the token is not echoed`)
  }
  t.equal((await openStream(`${url}/events/subscribe?users=${alice}`, bearer(signJwt(good, HS)))).status, 200, 'the good token passes')
  t.notOk(JSON.stringify(logs).includes(signJwt(good, HS).split('.')[2]!), 'no signature in the logs')
})

t.test('claims decide what a token may subscribe to; the first refused filter is named in a 403', async t => {
  const { url } = await startApp(t, { ...jwtEnv, PUBLISH_TOKEN: 'publish-token-0123456789' })
  const user = signJwt({ sub: alice, exp: nowS() + 60 }, HS)
  const cases: Array<[string, string, string]> = [
    [user, `users=${bob}`, `users=${bob}`],
    [user, `users=${alice}&streams=s-1`, 'streams=s-1'],
    [signJwt({ sub: 'service-x', exp: nowS() + 60 }, HS), `users=${alice}`, `users=${alice}`],
    [signJwt({ sub: 'service-x', exp: nowS() + 60 }, HS), 'all=true', 'all=true']
  ]
  for (const [token, query, refused] of cases) {
    const { status, body } = await refusal(url, query, bearer(token))
    t.equal(status, 403, query)
    t.same(body, { error: 'forbidden', message: `this token may not subscribe to ${refused}` })
  }
  t.equal((await subscribe(t, url, `users=${alice}`, bearer(user))).status, 200, 'its own account')
  const granted = signJwt({ sub: alice, streams: ['s-1'], exp: nowS() + 60 }, HS)
  t.equal((await subscribe(t, url, `users=${alice}&streams=s-1`, bearer(granted))).status, 200, 'a stream from the streams claim')

  // Alice takes part in s-2 once it is created: then she may follow it by id.
  t.equal((await refusal(url, 'streams=s-2', bearer(user))).status, 403)
  await publish(url, { event: 'stream.created', data: { id: 's-2', sender: bob, recipient: alice } }, { authorization: 'Bearer publish-token-0123456789' })
  t.equal((await subscribe(t, url, 'streams=s-2', bearer(user))).status, 200, 'a stream she is recipient of')

  const service = signJwt({ sub: 'indexer', scope: 'events:all other', exp: nowS() + 60 }, HS)
  t.equal((await subscribe(t, url, `all=true&users=${bob}&streams=x`, bearer(service))).status, 200, 'events:all reads everything')
  const scopes = signJwt({ sub: 'indexer', scopes: ['events:all'], exp: nowS() + 60 }, HS)
  t.equal((await subscribe(t, url, 'all=true', bearer(scopes))).status, 200, 'scopes as an array')
})

t.test('all=true from a user\'s token is its own account\'s events, as FlowFi reads it: not a 403', async t => {
  const publisher = { authorization: 'Bearer publish-token-0123456789' }
  const { url } = await startApp(t, { ...jwtEnv, PUBLISH_TOKEN: 'publish-token-0123456789' })
  const own = await subscribe(t, url, 'all=true', bearer(signJwt({ sub: alice, exp: nowS() + 60 }, HS)))
  t.equal(own.status, 200)
  const { body } = await publish(url, [
    { event: 'stream.created', data: { id: 'mine', sender: alice, recipient: bob } },
    { event: 'stream.created', data: { id: 'theirs', sender: bob, recipient: carol } },
    { event: 'stream.withdrawn', data: { streamId: 'theirs', amount: '1' } },
    { event: 'stream.fee_config_updated', data: {}, to: [alice] },
    { event: 'stream.withdrawn', data: { streamId: 'mine', amount: '1' } }
  ], publisher)
  // In order: her last event third means none of theirs came between.
  t.same((await own.eventCount(3)).map(e => e.id), [body.ids[0], body.ids[3], body.ids[4]], 'her stream and what is addressed to her, nothing else')
})

t.test('the token comes from the header, then the cookie, then access_token, then token (FlowFi\'s frontend)', async t => {
  const { url, logs } = await startApp(t, { ...jwtEnv, AUTH_COOKIE: 'session' })
  const aliceToken = signJwt({ sub: alice, exp: nowS() + 60 }, HS)
  const bobToken = signJwt({ sub: bob, exp: nowS() + 60 }, HS)
  t.equal((await openStream(`${url}/events/subscribe?users=${alice}`, { cookie: `other=1; session=${aliceToken}` })).status, 200, 'cookie')
  t.equal((await openStream(`${url}/events/subscribe?users=${alice}&access_token=${aliceToken}`)).status, 200, 'query')
  t.equal((await openStream(`${url}/events/subscribe?users=${alice}&token=${aliceToken}`)).status, 200, 'token, as FlowFi\'s frontend sends it')
  t.equal((await refusal(url, `users=${alice}&access_token=${aliceToken}`, { cookie: `session=${bobToken}` })).status, 403, 'the cookie wins over the query')
  t.equal((await refusal(url, `users=${alice}&token=${aliceToken}`, { cookie: `session=${bobToken}` })).status, 403, 'over token too')
  t.equal((await refusal(url, `users=${alice}&token=${aliceToken}&access_token=${bobToken}`)).status, 403, 'access_token wins over token')
  t.equal((await refusal(url, `users=${alice}&token=not-a-jwt`)).status, 401, 'a bad token is a 401, not ignored')
  t.same((await refusal(url, `users=${alice}&token=${aliceToken}&token=${aliceToken}`)).body,
    { error: 'invalid_token', message: 'the token query parameter is given more than once: send one token' })
  t.equal((await refusal(url, `users=${alice}`, { ...bearer(bobToken), cookie: `session=${aliceToken}` })).status, 403, 'the header wins over the cookie')
  t.notOk(JSON.stringify(logs).includes(aliceToken.split('.')[2]!), 'no token in the logs')
})

t.test('a stream ends with events.closing when its token expires, and the same token is then refused', async t => {
  const { url, app } = await startApp(t, { ...jwtEnv, JWT_CLOCK_TOLERANCE_S: '1' })
  const token = signJwt({ sub: alice, exp: nowS() + 1 }, HS)
  const client = await subscribe(t, url, `users=${alice}`, bearer(token))
  await publish(url, { event: 'stream.created', data: { id: 'e-1', sender: alice, recipient: bob } }, bearer(signJwt({ sub: 'backend', scope: 'events:publish', exp: nowS() + 60 }, HS)))
  await client.eventCount(1)
  await client.until('the end of the stream', () => client.ended, 6000)
  t.same(client.events.at(-1), { event: 'events.closing', data: '{"reason":"token_expired"}', id: undefined })
  t.match(client.raw, /\nevent: events.closing\ndata: \{"reason":"token_expired"\}\n\n$/, 'no id line: the client keeps its last event id')
  t.equal(app.broker.metrics.closes.token_expired, 1)
  t.match(await refusal(url, `users=${alice}`, bearer(token)), { status: 401, body: { error: 'token_expired' } })
})

t.test('RS256 and ES256 public keys', async t => {
  const pairs = [
    ['RS256', generateKeyPairSync('rsa', { modulusLength: 2048 })],
    ['ES256', generateKeyPairSync('ec', { namedCurve: 'P-256' })]
  ] as const
  for (const [alg, { privateKey, publicKey }] of pairs) {
    const { url } = await startApp(t, { AUTH_MODE: 'jwt', JWT_PUBLIC_KEY: publicKey.export({ type: 'spki', format: 'pem' }).toString() })
    const token = signJwt({ sub: alice, exp: nowS() + 60 }, { alg, privateKey })
    t.equal((await openStream(`${url}/events/subscribe?users=${alice}`, bearer(token))).status, 200, alg)
    t.match(await refusal(url, `users=${alice}`, bearer(signJwt({ sub: alice }, HS))), { status: 401, body: { error: 'invalid_algorithm' } },
      `${alg}: an HS256 token signed with anything is refused`)
  }
})

t.test('publishing with AUTH_MODE=jwt: events:publish tokens, or PUBLISH_TOKEN; also in production', async t => {
  const { url } = await startApp(t, { NODE_ENV: 'production', JWT_SECRET: SECRET })
  const event = { event: 'stream.cancelled', data: { streamId: '1' } }
  t.equal((await publish(url, event, bearer(signJwt({ sub: 'backend', scope: 'events:publish', exp: nowS() + 60 }, HS)))).status, 202)
  t.match(await publish(url, event, bearer(signJwt({ sub: alice, exp: nowS() + 60 }, HS))), { status: 403, body: { error: 'forbidden', message: 'this token lacks the events:publish scope' } })
  t.match(await publish(url, event), { status: 401, body: { error: 'missing_token', message: /or use PUBLISH_TOKEN$/ } })
  t.equal((await refusal(url, 'all=true')).status, 401, 'production defaults to AUTH_MODE=jwt')

  const withToken = await startApp(t, { ...jwtEnv, PUBLISH_TOKEN: 'publish-token-0123456789' })
  t.equal((await publish(withToken.url, event, { authorization: 'Bearer publish-token-0123456789' })).status, 202)
})

t.test('CORS: listed origins, with credentials, on the event stream too', async t => {
  const { url } = await startApp(t, { CORS_ORIGINS: 'https://app.flowfi.xyz, http://localhost:5173' })
  const preflight = await fetch(`${url}/events/subscribe?all=true`, {
    method: 'OPTIONS',
    headers: { origin: 'https://app.flowfi.xyz', 'access-control-request-method': 'GET', 'access-control-request-headers': 'last-event-id' }
  })
  t.equal(preflight.status, 204)
  t.equal(preflight.headers.get('access-control-allow-origin'), 'https://app.flowfi.xyz')
  t.equal(preflight.headers.get('access-control-allow-credentials'), 'true')

  const stream = await openStream(`${url}/events/subscribe?all=true`, { origin: 'http://localhost:5173' })
  t.teardown(() => stream.close())
  t.equal(stream.headers['access-control-allow-origin'], 'http://localhost:5173', 'set by a hook, sent by the hijacked stream')
  t.equal(stream.headers['access-control-allow-credentials'], 'true')
  t.equal(stream.headers['content-type'], 'text/event-stream; charset=utf-8')

  const stranger = await openStream(`${url}/events/subscribe?all=true`, { origin: 'https://evil.example' })
  t.teardown(() => stranger.close())
  t.equal(stranger.headers['access-control-allow-origin'], undefined, 'another origin gets no grant')

  const { url: plain } = await startApp(t)
  const none = await fetch(`${plain}/events/stats`, { headers: { origin: 'https://app.flowfi.xyz' } })
  t.equal(none.headers.get('access-control-allow-origin'), null, 'no CORS_ORIGINS: same origin only')
})

t.test('CORS: a listed origin may read Retry-After on a 429 or 503 (access-control-expose-headers)', async t => {
  const origin = { origin: 'https://app.flowfi.xyz' }
  const exposes = (headers: Headers | Record<string, unknown>, what: string): void => {
    const exposed = headers instanceof Headers ? headers.get('access-control-expose-headers') : headers['access-control-expose-headers']
    t.ok(String(exposed).split(',').map(name => name.trim().toLowerCase()).includes('retry-after'), `${what}: Retry-After is exposed (${exposed})`)
  }
  const limited = await startApp(t, { CORS_ORIGINS: origin.origin, SUBSCRIBE_RATE_PER_MINUTE: '2', RATE_LIMIT_PER_MINUTE: '1', MAX_CONNECTIONS_PER_IP: '1' })
  const stream = await openStream(`${limited.url}/events/subscribe?all=true`, origin)
  t.teardown(() => stream.close())
  exposes(stream.headers, 'the event stream')
  for (const [path, status, error] of [['/events/subscribe?all=true', 429, 'too_many_per_ip'], ['/events/stats', 200, undefined], ['/events/stats', 429, 'too_many_requests']] as const) {
    const response = await fetch(`${limited.url}${path}`, { headers: origin })
    t.equal(response.status, status, path)
    if (error !== undefined) t.match(await response.json(), { error }, path)
    t.equal(response.headers.get('access-control-allow-origin'), origin.origin, `${path} ${status}: the grant`)
    if (status !== 200) t.ok(Number(response.headers.get('retry-after')) > 0, `${path} ${status}: Retry-After`)
    exposes(response.headers, `${path} ${status}`)
  }
  stream.close()
  await waitUntil('the first stream is gone', () => limited.app.broker.size === 0)
  const rate = await fetch(`${limited.url}/events/subscribe?all=true`, { headers: origin })
  t.match({ status: rate.status, body: await rate.json() }, { status: 429, body: { error: 'too_many_requests' } }, 'the subscribe rate')
  exposes(rate.headers, 'subscribe 429 too_many_requests')

  const full = await startApp(t, { CORS_ORIGINS: origin.origin, MAX_CONNECTIONS: '1' })
  const only = await openStream(`${full.url}/events/subscribe?all=true`, origin)
  t.teardown(() => only.close())
  const over = await fetch(`${full.url}/events/subscribe?all=true`, { headers: origin })
  t.match({ status: over.status, body: await over.json() }, { status: 503, body: { error: 'over_capacity' } }, 'over capacity')
  t.equal(over.headers.get('retry-after'), '10', 'subscribe 503: Retry-After')
  exposes(over.headers, 'subscribe 503 over_capacity')
})

t.test('rate limits: new streams per address, and the other routes, counted apart', async t => {
  const { url } = await startApp(t, { SUBSCRIBE_RATE_PER_MINUTE: '2', RATE_LIMIT_PER_MINUTE: '3' })
  await subscribe(t, url, 'all=true')
  await subscribe(t, url, 'all=true')
  const third = await fetch(`${url}/events/subscribe?all=true`)
  t.equal(third.status, 429)
  t.ok(Number(third.headers.get('retry-after')) > 0, 'Retry-After')
  t.match(await third.json(), { error: 'too_many_requests', message: /Rate limit exceeded/ })
  for (let i = 0; i < 3; i++) t.equal((await fetch(`${url}/events/stats`)).status, 200, 'the streams did not use up the global limit')
  t.equal((await fetch(`${url}/events/stats`)).status, 429)
  t.equal((await fetch(`${url}/healthz`)).status, 200, 'probes are never limited')
})

/** What a subscribe gets: its status, and its JSON body unless a stream opened (closed at once). */
async function answer (url: string, query: string, headers: Record<string, string> = {}): Promise<{ status: number, body: any }> {
  const client = await openStream(`${url}/events/subscribe?${query}`, headers)
  if (client.status === 200) {
    client.close()
    return { status: 200, body: undefined }
  }
  await client.until('the end of the answer', () => client.ended)
  return { status: client.status, body: JSON.parse(client.raw) }
}

t.test('JWT_ISSUER and JWT_AUDIENCE, when set, are required: a token without the claim is refused', async t => {
  const { url } = await startApp(t, { ...jwtEnv, JWT_ISSUER: 'https://id.flowfi.xyz', JWT_AUDIENCE: 'flowfi-events', LOG_LEVEL: 'silent' })
  const claims = { sub: alice, scope: 'events:publish', exp: nowS() + 60 }
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['neither iss nor aud', claims, /iss|aud/],
    ['no aud', { ...claims, iss: 'https://id.flowfi.xyz' }, /aud/],
    ['no iss', { ...claims, aud: 'flowfi-events' }, /iss/]
  ]
  for (const [what, token, message] of cases) {
    const signed = signJwt(token, HS)
    t.match(await answer(url, `users=${alice}`, bearer(signed)), { status: 401, body: { error: 'invalid_claim', message } }, `subscribe: ${what}`)
    t.match(await publish(url, { event: 'stream.cancelled', data: { streamId: '1' } }, bearer(signed)),
      { status: 401, body: { error: 'invalid_claim', message } }, `publish: ${what}`)
  }
  const both = signJwt({ ...claims, iss: 'https://id.flowfi.xyz', aud: 'flowfi-events' }, HS)
  t.equal((await subscribe(t, url, `users=${alice}`, bearer(both))).status, 200, 'with both it opens')
  t.equal((await publish(url, { event: 'stream.cancelled', data: { streamId: '1' } }, bearer(both))).status, 202, 'and publishes')
})

t.test('a token without exp is refused, unless JWT_REQUIRE_EXP=false; one not valid yet says so', async t => {
  const { url } = await startApp(t, { ...jwtEnv, LOG_LEVEL: 'silent' })
  const forever = signJwt({ sub: alice }, HS)
  t.match(await answer(url, `users=${alice}`, bearer(forever)), { status: 401, body: { error: 'invalid_claim', message: /exp/ } })
  const early = signJwt({ sub: alice, nbf: nowS() + 600, exp: nowS() + 1200 }, HS)
  t.match(await answer(url, `users=${alice}`, bearer(early)), { status: 401, body: { error: 'token_not_yet_valid' } })

  const { url: lenient } = await startApp(t, { ...jwtEnv, JWT_REQUIRE_EXP: 'false', LOG_LEVEL: 'silent' })
  t.equal((await subscribe(t, lenient, `users=${alice}`, bearer(forever))).status, 200, 'JWT_REQUIRE_EXP=false: accepted, and it never expires')
})

t.test('a malformed token cookie is a 401 invalid_token, with no error in the log', async t => {
  const { url, logs } = await startApp(t, jwtEnv)
  for (const cookie of ['flowfi_token=%', 'flowfi_token=%E0%A4%A', 'a=1; flowfi_token=%zz']) {
    t.match(await answer(url, `users=${alice}`, { cookie }), { status: 401, body: { error: 'invalid_token' } }, `subscribe: ${cookie}`)
    t.match(await publish(url, { event: 'stream.cancelled', data: { streamId: '1' } }, { cookie }),
      { status: 401, body: { error: 'invalid_token' } }, `publish: ${cookie}`)
  }
  t.notOk(logs.some(line => (line.level as number) >= 50), 'nothing logged as an error')
  const aliceToken = signJwt({ sub: alice, exp: nowS() + 60 }, HS)
  t.equal((await subscribe(t, url, `users=${alice}`, { cookie: `flowfi_token=${encodeURIComponent(aliceToken)}` })).status, 200,
    'a well-formed cookie still works')
})

t.test('a query token is redacted under every name the query parser reads as a token parameter', async t => {
  const { url, logs } = await startApp(t, jwtEnv)
  const aliceToken = signJwt({ sub: alice, exp: nowS() + 60 }, HS)
  for (const name of ['access%5Ftoken', '%61ccess_token', 'access_token', 'token', '%74oken']) {
    t.equal((await subscribe(t, url, `users=${alice}&${name}=${aliceToken}`)).status, 200, `${name}: the token is accepted`)
  }
  await fetch(`${url}/events/stats?ACCESS_TOKEN=${aliceToken}&%74oken=${aliceToken}`)
  t.notOk(JSON.stringify(logs).includes(aliceToken.split('.')[2]!), 'and never written to the log')
  t.ok(logs.some(line => (line.req as { url?: string } | undefined)?.url === '/events/stats?ACCESS_TOKEN=[REDACTED]&%74oken=[REDACTED]'),
    'each parameter is logged as sent, its value replaced')
  await publish(url, { event: 'stream.cancelled', data: { streamId: '1' } }, {}, `access%5Ftoken=${aliceToken}`)
  t.notOk(JSON.stringify(logs).includes(aliceToken.split('.')[2]!), 'nor when publishing with it')
})
