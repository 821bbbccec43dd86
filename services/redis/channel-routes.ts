import { STREAM_ID_PATTERN, routeOf, type Route } from '../event-schema.js'
import type { Envelope } from '../protocol.js'
import { isStellarAddress } from '../stellar-key.js'

/**
 * One entry of `REDIS_CHANNELS`: a channel, or a pattern (`…*`, through PSUBSCRIBE). A pattern whose
 * last segment is `stream:*` names the stream in the channel (`sse:stream:<id>`), one whose last is
 * `user:*` the account (`sse:user:<account>`); every other entry carries events routed by their data.
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
  const unique = [...new Set(names)]
  // Redis sends a message once for each entry that matches its channel: it would be logged twice.
  for (const name of unique) {
    const wider = unique.find(other => other !== name && other.endsWith('*') && name.startsWith(other.slice(0, -1)))
    if (wider !== undefined) throw new Error(`${JSON.stringify(name)} is matched by ${JSON.stringify(wider)} too: its messages would be taken twice`)
  }
  return unique.map(name => {
    const pattern = name.endsWith('*')
    const routes = !pattern ? 'data' : /(^|:)stream:\*$/.test(name) ? 'stream' : /(^|:)user:\*$/.test(name) ? 'account' : 'data'
    return { name, pattern, routes }
  })
}

/**
 * Where a valid event goes, as the channel it came on says, or why it is refused. A stream's channel
 * makes it an event of that stream (whatever its data names; an admin event too; one with `to` is
 * refused, it belongs on an account's channel); an account's
 * channel sends it to that account only (with `all=true`), whatever its `users` or `to` said, and
 * makes nobody a participant. Other channels route it by its data, as HTTP publishing does.
 */
export function routeOnChannel (source: ChannelSource, channel: string, envelope: Envelope):
  { ok: true, route: Route } | { ok: false, why: string } {
  if (source.routes === 'data') return { ok: true, route: routeOf(envelope) }
  const named = channel.slice(source.name.length - 1)
  if (source.routes === 'account') {
    if (!isStellarAddress(named)) return { ok: false, why: 'the channel does not end in a Stellar account or contract address' }
    return { ok: true, route: { streamId: undefined, accounts: [named] } }
  }
  if (!STREAM_ID_PATTERN.test(named)) return { ok: false, why: 'the channel does not end in a stream id' }
  if (envelope.to !== undefined) return { ok: false, why: 'an event addressed with to goes on an account\'s channel, not a stream\'s' }
  return { ok: true, route: { streamId: named, accounts: routeOf(envelope).accounts } }
}
