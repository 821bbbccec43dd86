import t from 'tap'
import { parseChannelSources, routedByChannel, type ChannelSource } from '../services/channel-routes.js'
import type { Envelope } from '../services/protocol.js'
import { randomAccountId } from './helpers/app.js'

const account = randomAccountId()
const other = randomAccountId()

t.test('REDIS_CHANNELS: channels, and patterns that name a stream or an account', async t => {
  t.same(parseChannelSources('stream-events, sse:stream:*,sse:user:*,events:*,sse:stream:*'), [
    { name: 'stream-events', pattern: false, routes: 'data' },
    { name: 'sse:stream:*', pattern: true, routes: 'stream' },
    { name: 'sse:user:*', pattern: true, routes: 'account' },
    { name: 'events:*', pattern: true, routes: 'data' }
  ], 'trimmed, once each')
  for (const bad of ['', 'a,,b', 'sse:*:x', 'has space', 'x'.repeat(129), 'a?', 'sse:[ab]']) {
    t.throws(() => parseChannelSources(bad), /is not a channel: letters, digits and \. : _ -, with an optional \* at the end/, JSON.stringify(bad))
  }
})

t.test('a message is routed as its channel says', async t => {
  const [legacy, streams, users] = parseChannelSources('stream-events,sse:stream:*,sse:user:*') as [ChannelSource, ChannelSource, ChannelSource]
  const paused: Envelope = { event: 'stream.paused', data: { streamId: 42 }, users: [other] }
  t.same(routedByChannel(legacy, 'stream-events', paused), { ok: true, envelope: paused }, 'by its data')
  t.same(routedByChannel(streams, 'sse:stream:42', paused), { ok: true, envelope: paused }, 'its own stream\'s channel')
  t.same(routedByChannel(streams, 'sse:stream:43', paused), { ok: false, why: 'the event names another stream than its channel' })
  t.same(routedByChannel(streams, 'sse:stream:4 2', paused), { ok: false, why: 'the channel does not end in a stream id' })
  t.same(routedByChannel(streams, 'sse:stream:1', { event: 'stream.admin_transferred', data: {} }),
    { ok: false, why: 'a stream.admin_transferred belongs to no stream' })
  t.same(routedByChannel(users, `sse:user:${account}`, paused),
    { ok: true, envelope: { event: 'stream.paused', data: { streamId: 42 }, to: [account] } }, 'to the account only; its users dropped')
  t.same(routedByChannel(users, 'sse:user:GABC', paused), { ok: false, why: 'the channel does not end in a Stellar account or contract address' })
})
