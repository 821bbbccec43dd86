import { STREAM_ID_PATTERN, isStreamless, streamIdOf } from './event-schema.js'
import type { Envelope } from './protocol.js'
import { isStellarAddress } from './stellar-key.js'

/**
 * One entry of `REDIS_CHANNELS`: a channel, or a pattern (`…*`, through PSUBSCRIBE). A pattern whose
 * `*` follows `stream:` names the stream in the channel (`sse:stream:<id>`), one whose `*` follows
 * `user:` the account (`sse:user:<account>`); every other entry carries events routed by their data.
 */
export interface ChannelSource {
  name: string
  pattern: boolean
  routes: 'data' | 'stream' | 'account'
}

const ENTRY = /^[\w.:-]{1,128}\*?$/

/** Reads `REDIS_CHANNELS`; throws an Error that says which entry is wrong. */
export function parseChannelSources (text: string): ChannelSource[] {
  const names = text.split(',').map(entry => entry.trim())
  const bad = names.find(name => !ENTRY.test(name))
  if (bad !== undefined) {
    throw new Error(`${JSON.stringify(bad)} is not a channel: letters, digits and . : _ -, with an optional * at the end`)
  }
  return [...new Set(names)].map(name => {
    const pattern = name.endsWith('*')
    const routes = !pattern ? 'data' : name.endsWith('stream:*') ? 'stream' : name.endsWith('user:*') ? 'account' : 'data'
    return { name, pattern, routes }
  })
}

/**
 * A valid envelope as the channel it came on addresses it, or why it is refused. On a stream's
 * channel the event must be that stream's; on an account's it goes to that account only (with
 * `all=true`), whatever its `users` or `to` said, and makes nobody a participant.
 */
export function routedByChannel (source: ChannelSource, channel: string, envelope: Envelope):
  { ok: true, envelope: Envelope } | { ok: false, why: string } {
  if (source.routes === 'data') return { ok: true, envelope }
  const named = channel.slice(source.name.length - 1)
  if (source.routes === 'account') {
    if (!isStellarAddress(named)) return { ok: false, why: 'the channel does not end in a Stellar account or contract address' }
    const { users: _users, ...rest } = envelope
    return { ok: true, envelope: { ...rest, to: [named] } as Envelope }
  }
  if (!STREAM_ID_PATTERN.test(named)) return { ok: false, why: 'the channel does not end in a stream id' }
  if (isStreamless(envelope.event)) return { ok: false, why: `a ${envelope.event} belongs to no stream` }
  if (streamIdOf(envelope) !== named) return { ok: false, why: 'the event names another stream than its channel' }
  return { ok: true, envelope }
}
