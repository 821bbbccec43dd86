import { STREAM_ID_PATTERN } from './event-schema.js'
import { QUERY } from './protocol.js'
import { isStellarAddress } from './stellar-key.js'
import type { Filters } from './subscription-index.js'

/** Why a subscription was refused: a machine-readable code and a sentence for the developer. */
export interface QueryProblem {
  error: 'missing_filter' | 'invalid_stream' | 'invalid_user' | 'invalid_all' | 'too_many_filters'
  message: string
}

type QueryValue = string | string[] | undefined

/** Shared by every subscription without streams or users: an open stream holds no array of its own. */
const NONE: readonly string[] = Object.freeze([])
const unique = (values: string[]): readonly string[] => values.length === 0 ? NONE : [...new Set(values)]

function list (value: QueryValue): string[] {
  if (value === undefined) return []
  return Array.isArray(value) ? value : [value]
}

/** Turns `?streams=..&users=..&all=true` into filters, or says what is wrong with it. */
export function parseFilters (
  query: Record<string, QueryValue>,
  maxFilters: number
): { ok: true, filters: Filters } | { ok: false, problem: QueryProblem } {
  const streams = list(query[QUERY.streams])
  const users = list(query[QUERY.users])
  const all = list(query[QUERY.all])

  if (streams.length + users.length > maxFilters) {
    return fail('too_many_filters',
      `${streams.length + users.length} streams and users filters given; at most ${maxFilters} are allowed`)
  }
  const badStream = streams.find(id => !STREAM_ID_PATTERN.test(id))
  if (badStream !== undefined) {
    return fail('invalid_stream',
      `streams=${JSON.stringify(badStream)} is not a stream id: use 1 to 64 of A-Z a-z 0-9 _ -`)
  }
  const badUser = users.find(key => !isStellarAddress(key))
  if (badUser !== undefined) {
    return fail('invalid_user', `users=${JSON.stringify(badUser)} is not a Stellar account id or contract address ` +
      '(G or C followed by 55 base32 characters, with a valid checksum)')
  }
  if (all.length > 1 || (all.length === 1 && all[0] !== 'true' && all[0] !== 'false')) {
    return fail('invalid_all', `all=${JSON.stringify(all.join(','))} is not allowed: use all=true or all=false, once`)
  }
  const filters = { all: all[0] === 'true', streams: unique(streams), users: unique(users) }
  if (!filters.all && filters.streams.length === 0 && filters.users.length === 0) {
    return fail('missing_filter', 'subscribe to something: streams=<id>, users=<G...> or all=true')
  }
  return { ok: true, filters }
}

function fail (error: QueryProblem['error'], message: string): { ok: false, problem: QueryProblem } {
  return { ok: false, problem: { error, message } }
}
