// FlowFi's backend publishes its ten event types with the payloads below (LabsCrypt/flowfi,
// backend/src/workers/soroban-event-worker.ts); its frontend subscribes by stream, by account or to
// everything. Each routing rule is shown here over HTTP, on one instance and on two sharing Redis.
import { randomBytes } from 'node:crypto'
import t, { type Test } from 'tap'
import { EventSource } from 'eventsource'
import { publish, randomAccountId, startApp, type RunningApp } from './helpers/app.js'
import { subscribe, type StreamClient } from './helpers/sse-client.js'
import { redisAnswers, redisClient, redisEnv } from './helpers/redis.js'
import { waitUntil } from './helpers/app.js'
import { nowS, signJwt } from './helpers/jwt.js'
import { encodeStellarContract } from '../services/stellar-key.js'
import { EVENT_TYPES } from '../services/protocol.js'

const sender = randomAccountId()
const recipient = randomAccountId()
const admin = randomAccountId()
const contract = encodeStellarContract(randomBytes(32))
const token = encodeStellarContract(randomBytes(32))
const U64_MAX = '18446744073709551615'
const chain = (ledger: number) => ({ transactionHash: randomBytes(32).toString('hex'), ledger, timestamp: 1767225600 + ledger })

/** The backend's payloads for one stream: a JSON number id while safe, a decimal string past 2^53. */
function backendEvents (streamId: number | string) {
  return [
    { event: 'stream.created', data: { streamId, sender, recipient, tokenAddress: token, ratePerSecond: '1000', depositedAmount: '86400000', startTime: 1767225600, ...chain(1) } },
    { event: 'stream.topped_up', data: { streamId, amount: '5000', newDepositedAmount: '86405000', ...chain(2) } },
    { event: 'stream.withdrawn', data: { streamId, recipient, amount: '170141183460469231731687303715884105727', ...chain(3) } },
    { event: 'stream.paused', data: { streamId, sender, pausedAt: 1767225700, ...chain(4) } },
    { event: 'stream.resumed', data: { streamId, sender, newEndTime: '1767312000', ...chain(5) } },
    { event: 'stream.cancelled', data: { streamId, refundedAmount: '10', amountWithdrawn: '0', ...chain(6) } },
    { event: 'stream.completed', data: { streamId, recipient, totalWithdrawn: '86405000', ...chain(7) } }
  ]
}
/** The admin's events: a fee of a stream, addressed to the admin; two that belong to no stream. */
function adminEvents (streamId: number | string) {
  return [
    { event: 'stream.fee_collected', data: { streamId, treasury: admin, feeAmount: '25', token, ...chain(8) }, to: [admin] },
    { event: 'stream.fee_config_updated', data: { admin, oldTreasury: admin, newTreasury: contract, oldFeeRateBps: 25, newFeeRateBps: 30, ...chain(9) } },
    { event: 'stream.admin_transferred', data: { previousAdmin: admin, newAdmin: contract, ...chain(10) }, to: [admin, contract] }
  ]
}

const received = (client: StreamClient) => client.events.map(({ event, data }) => ({ event, data }))
const asSent = (events: Array<{ event: string, data: unknown }>) => events.map(({ event, data }) => ({ event, data: JSON.stringify(data) }))

/** Waits for as many events as `events`, the first `client` receives, and checks they are those, as sent. */
async function receives (t: Test, client: StreamClient, events: Array<{ event: string, data: unknown }>, what: string): Promise<void> {
  await client.eventCount(events.length)
  t.same(received(client), asSent(events), what)
}

/** Nothing more arrives at `client` (checked after an event published later has reached `witness`). */
async function nothingMore (t: Test, client: StreamClient, witness: StreamClient, publishUrl: string, what: string): Promise<void> {
  const before = client.events.length
  const { body } = await publish(publishUrl, { event: 'stream.cancelled', data: { streamId: 'marker' } })
  await witness.until('the marker', () => witness.events.some(e => e.id === body.id))
  t.equal(client.events.length, before, what)
}

/** Publishes on `publisher`, reads on `reader`; returns the id of the last stream event before the admin's. */
async function routing (t: Test, publisher: RunningApp, reader: RunningApp): Promise<string> {
  const id = Math.floor(Math.random() * 2 ** 40)
  const everything = await subscribe(t, reader.url, 'all=true')
  const byStream = await subscribe(t, reader.url, `streams=${id}`)
  const bySender = await subscribe(t, reader.url, `users=${sender}`)
  const byAdmin = await subscribe(t, reader.url, `users=${admin}`)
  const byContract = await subscribe(t, reader.url, `users=${contract}`)

  const stream = backendEvents(id)
  t.equal((await publish(publisher.url, stream)).status, 202)
  await receives(t, everything, stream, 'every type, its data byte for byte as published')
  await receives(t, byStream, stream, 'streams=<id> for a numeric id')
  await receives(t, bySender, stream, 'users=<sender> learned the stream from a stream.created with streamId')

  const fees = adminEvents(id)
  t.equal((await publish(publisher.url, fees)).status, 202)
  await everything.eventCount(10)
  t.same(received(everything).slice(7), asSent(fees), 'all=true gets the admin\'s events')
  await receives(t, byAdmin, [fees[0]!, fees[2]!], 'the admin gets what is addressed to it')
  await receives(t, byContract, [fees[2]!], 'a contract address subscribes as an account does')
  t.same(JSON.parse(byAdmin.events[0]!.data).streamId, id, 'the fee names its stream')
  await nothingMore(t, byStream, everything, publisher.url, 'a fee addressed to the admin is not sent to the stream\'s subscribers')

  const later = { event: 'stream.withdrawn', data: { streamId: id, amount: '1' } }
  t.equal((await publish(publisher.url, later)).status, 202)
  await byStream.eventCount(8)
  await bySender.eventCount(8)
  t.equal(bySender.events.at(-1)!.data, JSON.stringify(later.data), 'a participant gets the stream\'s later events')
  await nothingMore(t, byAdmin, everything, publisher.url, 'the fee did not make the admin a participant of the stream')

  // A contract as a stream's sender; a u64 id past 2^53, as the backend sends it: a string.
  const big = await subscribe(t, reader.url, `streams=${U64_MAX}`)
  const created = { event: 'stream.created', data: { streamId: U64_MAX, sender: contract, recipient, ...chain(11) } }
  const paused = { event: 'stream.paused', data: { streamId: U64_MAX, sender: contract, pausedAt: 1 } }
  t.equal((await publish(publisher.url, [created, paused])).status, 202)
  await receives(t, big, [created, paused], `streams=${U64_MAX}`)
  await byContract.eventCount(3)
  t.same(received(byContract).slice(1), asSent([created, paused]), 'the contract sender gets its stream\'s events')
  return everything.events[6]!.id!
}

t.test('one instance: FlowFi\'s events routed by stream, account and address', async t => {
  const app = await startApp(t)
  await routing(t, app, app)
  const metrics = await (await fetch(`${app.url}/metrics`)).text()
  for (const type of EVENT_TYPES) t.match(metrics, new RegExp(`sse_events_published_total\\{event="${type}"\\} [1-9]`), `counted: ${type}`)
})

if (await redisAnswers(t)) {
  t.test('two instances on Redis: the same routes, published on one and read on the other', async t => {
    const env = redisEnv(t)
    const a = await startApp(t, { ...env, INSTANCE_ID: 'a' })
    const b = await startApp(t, { ...env, INSTANCE_ID: 'b' })
    const beforeFees = await routing(t, a, b)
    // A new instance loads the history from the log with its routes: a resume gets what it got live.
    const c = await startApp(t, { ...env, INSTANCE_ID: 'c' })
    const resumed = await subscribe(t, c.url, `users=${admin}`, { 'last-event-id': beforeFees })
    await resumed.eventCount(2)
    t.same(resumed.events.map(e => e.event), ['stream.fee_collected', 'stream.admin_transferred'], 'replayed as routed')
    await nothingMore(t, resumed, await subscribe(t, c.url, 'all=true'), a.url, 'and nothing else')
  })
}

if (await redisAnswers(t)) {
  t.test('the backend\'s channels: sse:stream:<id> and sse:user:<account>, as it PUBLISHes on them', async t => {
    const env = redisEnv(t)
    const prefix = env.REDIS_PREFIX!
    const a = await startApp(t, { ...env, INSTANCE_ID: 'a' })
    const b = await startApp(t, { ...env, INSTANCE_ID: 'b' })
    await waitUntil('an instance bridges', () => a.app.fanout.bridging || b.app.fanout.bridging)
    const backend = redisClient(t)
    const id = Math.floor(Math.random() * 2 ** 40)
    const everything = await subscribe(t, b.url, 'all=true')
    const byStream = await subscribe(t, b.url, `streams=${id}`)
    const bySender = await subscribe(t, b.url, `users=${sender}`)
    const byAdmin = await subscribe(t, b.url, `users=${admin}`)

    // Every type on the stream's channel, as the backend's broadcastToStream sends them: {event, data}.
    const stream = [...backendEvents(id), ...adminEvents(id).map(({ event, data }) => ({ event, data }))]
    for (const message of stream) t.equal(await backend.publish(`${prefix}sse:stream:${id}`, JSON.stringify(message)), 1, `${message.event}: one listener`)
    await receives(t, everything, stream, 'all ten, byte for byte, in order')
    await receives(t, byStream, stream, 'the stream\'s channel makes each an event of that stream')
    await receives(t, bySender, stream, 'and reaches its participants')

    // Every type on the admin's channel: for the admin (and all=true) only.
    for (const message of stream) await backend.publish(`${prefix}sse:user:${admin}`, JSON.stringify(message))
    await receives(t, byAdmin, stream, 'the account\'s channel reaches that account')
    await everything.eventCount(20)
    t.same(received(everything).slice(10), asSent(stream), 'and all=true')
    await nothingMore(t, byStream, everything, a.url, 'not the streams= subscribers of the stream they name')
    await nothingMore(t, bySender, everything, a.url, 'nor its participants')
    await backend.publish(`${prefix}sse:stream:${id}`, JSON.stringify({ event: 'stream.withdrawn', data: { streamId: id, amount: '1' } }))
    await byStream.eventCount(11)
    await nothingMore(t, byAdmin, everything, a.url, 'and the admin did not become a participant of the stream')

    // A u64 id past 2^53 names its channel as the backend writes it: String(streamId).
    const big = await subscribe(t, b.url, `streams=${U64_MAX}`)
    const created = { event: 'stream.created', data: { streamId: U64_MAX, sender: contract, recipient, ...chain(12) } }
    await backend.publish(`${prefix}sse:stream:${U64_MAX}`, JSON.stringify(created))
    await big.eventCount(1)
    t.same(received(big), asSent([created]))

    // A channel that names no account, or no stream, routes nothing: logged and counted as malformed.
    const bridge = a.app.fanout.bridging ? a : b
    await backend.publish(`${prefix}sse:user:GABC`, JSON.stringify(stream[1]))
    await backend.publish(`${prefix}sse:stream:not a stream`, JSON.stringify(stream[1]))
    await waitUntil('both refused', () => bridge.app.fanout.channelMessages.malformed === 2)
    const refused = bridge.logs.filter(line => line.msg === 'channel message cannot be routed as its channel says; dropped')
    // The second of a kind within a minute is held back (a flood is one line), and counted.
    t.same(refused.map(line => [line.channel, line.why]), [
      [`${prefix}sse:user:GABC`, 'the channel does not end in a Stellar account or contract address']
    ])
    await waitUntil('the appends are answered', () => bridge.app.fanout.channelMessages.bridged === 22)
    t.same(bridge.app.fanout.channelMessages, { bridged: 22, malformed: 2, failed: 0 }, 'each message logged once')
  })
}

/** Listens as FlowFi's useStreamEvents does: one listener per type, the data parsed. */
function listen (source: EventSource, count: number): Promise<Array<{ type: string, data: unknown, lastEventId: string }>> {
  const seen: Array<{ type: string, data: unknown, lastEventId: string }> = []
  return new Promise((resolve, reject) => {
    source.onerror = event => reject(new Error(`EventSource error: ${event.message ?? 'unknown'}`))
    for (const type of EVENT_TYPES) {
      source.addEventListener(type, event => {
        seen.push({ type: event.type, data: JSON.parse(event.data), lastEventId: event.lastEventId })
        if (seen.length === count) resolve(seen)
      })
    }
  })
}

t.test('FlowFi\'s frontend, unchanged: EventSource on /v1/events/subscribe?streams=..&token=<jwt>, and ?all=true&token=', async t => {
  const HS = { alg: 'HS256', secret: 'an-hs256-secret-that-is-long-enough-for-tests' } as const
  const { url } = await startApp(t, { AUTH_MODE: 'jwt', JWT_SECRET: HS.secret, PUBLISH_TOKEN: 'a-publish-token-for-tests' })
  const backend = { authorization: 'Bearer a-publish-token-for-tests' }
  t.equal((await publish(url, [backendEvents(1)[0], backendEvents(2)[0]], backend)).status, 202, 'the backend creates streams 1 and 2 of the user')

  const user = signJwt({ sub: sender, exp: nowS() + 3600 }, HS)
  // Exactly the URL that frontend/src/hooks/useStreamEvents.ts builds.
  const params = new URLSearchParams()
  for (const id of ['1', '2']) params.append('streams', id)
  params.append('token', user)
  const source = new EventSource(`${url}/v1/events/subscribe?${params}`)
  t.teardown(() => source.close())
  await new Promise(resolve => { source.onopen = resolve })
  const service = signJwt({ sub: 'flowfi-admin', scope: 'events:all', exp: nowS() + 3600 }, HS)
  const everything = new EventSource(`${url}/v1/events/subscribe?all=true&token=${service}`)
  t.teardown(() => everything.close())
  await new Promise(resolve => { everything.onopen = resolve })

  // Its subscribeToAll: all=true with the same user token, which FlowFi reads as the user's own streams.
  const own = new EventSource(`${url}/v1/events/subscribe?all=true&token=${user}`)
  t.teardown(() => own.close())
  await new Promise(resolve => { own.onopen = resolve })

  const events = [...backendEvents(1).slice(1, 5), ...backendEvents(2).slice(5)]
  const heard = listen(source, events.length)
  const heardAll = listen(everything, events.length + 1)
  const heardOwn = listen(own, events.length)
  const foreign = { event: 'stream.created', data: { streamId: 3, sender: recipient, recipient: contract } }
  const { status, body } = await publish(url, [...events, foreign], backend)
  t.equal(status, 202, JSON.stringify(body))
  const expected = events.map((e, i) => ({ type: e.event, data: e.data, lastEventId: body.ids[i] }))
  t.same(await heard, expected, 'the user\'s streams, every type, with ids')
  t.same(await heardOwn, expected, 'all=true with the user\'s token: the same, her own streams only')
  t.same((await heardAll).map(e => e.type), [...events.map(e => e.event), 'stream.created'], 'all=true with an events:all token: everything')

  const refused = await fetch(`${url}/v1/events/subscribe?streams=3&token=${user}`)
  t.equal(refused.status, 403, 'a stream the user does not take part in')
  t.match(await refused.json(), { error: 'forbidden', message: /streams=3/ })
})
