import t from 'tap'
import { publish, startApp } from './helpers/app.js'
import { nowS, signJwt } from './helpers/jwt.js'
import { subscribe } from './helpers/sse-client.js'

const TOKEN = 'publish-limits-token-0123456789'
const SECRET = 'an-hs256-secret-that-is-long-enough-for-tests'
const jwtEnv = { AUTH_MODE: 'jwt', JWT_SECRET: SECRET }
const bearer = (token: string) => ({ authorization: `Bearer ${token}` })
const publisher = (sub: string) => bearer(signJwt({ sub, scope: 'events:publish', exp: nowS() + 600 }, { alg: 'HS256', secret: SECRET }))
const batch = (size: number) => Array.from({ length: size }, (_, i) => ({ event: 'stream.cancelled', data: { streamId: String(i) } }))

/** Publishes `count` single events one after the other; how many got each status. */
async function statuses (url: string, count: number, headers: Record<string, string>): Promise<Record<number, number>> {
  const tally: Record<number, number> = {}
  for (let i = 0; i < count; i++) {
    const { status } = await publish(url, batch(1)[0], headers)
    tally[status] = (tally[status] ?? 0) + 1
  }
  return tally
}

/** Publishes batches until one is refused for the quota (a bucket refills in a second: soon); returns that answer. */
async function exhaust (url: string, size: number, headers: Record<string, string>): Promise<{ accepted: number, refused: Response }> {
  for (let accepted = 0; accepted < 50; accepted++) {
    const response = await fetch(`${url}/events/publish`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(batch(size))
    })
    if (response.status !== 202) return { accepted, refused: response }
    await response.arrayBuffer()
  }
  throw new Error('no batch was refused')
}

/** The value of one sample of /metrics. */
async function sample (url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text()
  const line = text.split('\n').find(line => line.startsWith(`${name} `))
  return Number(line?.slice(name.length + 1))
}

t.test('an authenticated publisher is not under the per-address limit of the other routes', async t => {
  const { url } = await startApp(t, { ...jwtEnv, PUBLISH_TOKEN: TOKEN })
  t.same(await statuses(url, 700, bearer(TOKEN)), { 202: 700 }, 'PUBLISH_TOKEN: 700 events from one address')
  t.same(await statuses(url, 700, publisher('backend')), { 202: 700 }, 'a JWT with events:publish: 700 more')
  const anonymous = bearer(signJwt({ scope: 'events:publish', exp: nowS() + 600 }, { alg: 'HS256', secret: SECRET }))
  t.equal((await publish(url, batch(1)[0], anonymous)).status, 202, 'a token without sub publishes too (the subject is "")')
})

t.test('missing or failed credentials stay under the per-address limit: guessing tokens is throttled', async t => {
  const { url } = await startApp(t, { ...jwtEnv, PUBLISH_TOKEN: TOKEN, RATE_LIMIT_PER_MINUTE: '5' })
  t.same(await statuses(url, 3, bearer('a-guessed-token-0123456789')), { 401: 3 })
  t.same(await statuses(url, 1, bearer(signJwt({ sub: 'reader', scope: 'events:all', exp: nowS() + 600 }, { alg: 'HS256', secret: SECRET }))), { 403: 1 },
    'a token without the scope')
  t.same(await statuses(url, 1, {}), { 401: 1 })
  const throttled = await publish(url, batch(1)[0], bearer('another-guess-0123456789'))
  t.match(throttled, { status: 429, body: { error: 'too_many_requests' } }, 'the sixth request from the address')
  t.same(await statuses(url, 10, bearer(TOKEN)), { 202: 10 }, 'the right token still publishes')
  t.same(await statuses(url, 10, publisher('backend')), { 202: 10 })
})

t.test('each publisher has a quota of PUBLISH_RATE_PER_SECOND events; a batch counts its events, all or none', async t => {
  const { url, app } = await startApp(t, { ...jwtEnv, PUBLISH_TOKEN: TOKEN, PUBLISH_RATE_PER_SECOND: '5', MAX_PUBLISH_BATCH: '5' })
  const client = await subscribe(t, url, 'all=true', bearer(signJwt({ scope: 'events:all', exp: nowS() + 600 }, { alg: 'HS256', secret: SECRET })))

  const alice = await exhaust(url, 5, publisher('alice'))
  t.ok(alice.accepted >= 1, 'the burst is accepted')
  t.equal(alice.refused.status, 429)
  t.equal(alice.refused.headers.get('retry-after'), '1', 'Retry-After in whole seconds')
  t.same(await alice.refused.json(), {
    error: 'publish_rate_exceeded',
    message: 'this publisher may publish 5 events a second (a burst of 5); this batch of 5 was not published: retry after 1 s'
  })
  t.equal((await publish(url, batch(5), publisher('bob'))).status, 202, 'another subject has a bucket of its own')
  const token = await exhaust(url, 5, bearer(TOKEN))
  t.equal(token.refused.status, 429, 'PUBLISH_TOKEN is one publisher, with its own bucket')

  const published = (alice.accepted + 1 + token.accepted) * 5
  t.equal(app.broker.stats().published.total, published, 'no refused batch was published in part')
  await client.eventCount(published)
  t.equal(await sample(url, 'sse_publish_rate_limited_total'), 2, 'the refused requests')
  t.equal(await sample(url, 'sse_events_rejected_total{reason="publish_rate_exceeded"}'), 10, 'and their events')
})

t.test('the open endpoint of development takes events by address, at PUBLISH_RATE_PER_SECOND', async t => {
  const open = await startApp(t)
  t.same(await statuses(open.url, 700, {}), { 202: 700 }, '700 events from one address, more than RATE_LIMIT_PER_MINUTE requests')
  const slow = await startApp(t, { PUBLISH_RATE_PER_SECOND: '5', MAX_PUBLISH_BATCH: '5' })
  const { refused } = await exhaust(slow.url, 5, {})
  t.equal(refused.status, 429)
  t.match(await refused.json(), { error: 'publish_rate_exceeded', message: /^this address may publish 5 events a second/ })
})
