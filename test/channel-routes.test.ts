import t from 'tap'
import { parseChannelSources, routeOnChannel, type ChannelSource } from '../services/redis/channel-routes.js'
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
  t.same(parseChannelSources('stream:*,upstream:*,a:user:*,superuser:*,sse:users:*,b:user*').map(source => source.routes),
    ['stream', 'data', 'account', 'data', 'data', 'data'], 'the last segment is exactly stream or user')
  for (const bad of ['', 'a,,b', 'sse:*:x', 'has space', 'x'.repeat(129), 'a?', 'sse:[ab]']) {
    t.throws(() => parseChannelSources(bad), /is not a channel: letters, digits and \. : _ -, with an optional \* at the end/, JSON.stringify(bad))
  }
  t.throws(() => parseChannelSources('sse:stream:*,sse:*'), /"sse:stream:\*" is matched by "sse:\*" too: its messages would be taken twice/)
  t.throws(() => parseChannelSources('sse:user:G1,sse:user:*'), /"sse:user:G1" is matched by "sse:user:\*" too/)
})

t.test('a message is routed as its channel says', async t => {
  const [legacy, streams, users] = parseChannelSources('stream-events,sse:stream:*,sse:user:*') as [ChannelSource, ChannelSource, ChannelSource]
  const created: Envelope = { event: 'stream.created', data: { streamId: 42, sender: account, recipient: other } }
  const paused: Envelope = { event: 'stream.paused', data: { streamId: 42 }, users: [other] }
  t.same(routeOnChannel(legacy, 'stream-events', paused), { ok: true, route: { streamId: '42', accounts: [other] } }, 'by its data')
  t.same(routeOnChannel(streams, 'sse:stream:42', created), { ok: true, route: { streamId: '42', accounts: [account, other] } }, 'its stream\'s channel')
  t.same(routeOnChannel(streams, 'sse:stream:7', paused), { ok: true, route: { streamId: '7', accounts: [other] } }, 'the channel names the stream')
  t.same(routeOnChannel(streams, 'sse:stream:7', { ...paused, users: undefined, to: [account] } as Envelope),
    { ok: false, why: 'an event addressed with to goes on an account\'s channel, not a stream\'s' })
  t.same(routeOnChannel(streams, 'sse:stream:1', { event: 'stream.admin_transferred', data: {} }),
    { ok: true, route: { streamId: '1', accounts: [] } }, 'an admin event published on a stream\'s channel is that stream\'s')
  t.same(routeOnChannel(streams, 'sse:stream:4 2', paused), { ok: false, why: 'the channel does not end in a stream id' })
  t.same(routeOnChannel(users, `sse:user:${account}`, created), { ok: true, route: { streamId: undefined, accounts: [account] } },
    'to the account only: no stream, no participants')
  t.same(routeOnChannel(users, 'sse:user:GABC', paused), { ok: false, why: 'the channel does not end in a Stellar account or contract address' })
})
