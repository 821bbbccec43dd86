import { TOKEN_PARAMETERS } from './protocol.js'
import { isStellarAddress } from './stellar-key.js'
import type { Filters } from './subscription-index.js'

export const SCOPE_ALL = 'events:all'
export const SCOPE_PUBLISH = 'events:publish'
/** The header a 401 carries, telling the client which scheme to use. */
export const BEARER_CHALLENGE = { 'www-authenticate': 'Bearer realm="flowfi-events"' }

/** Who a verified token speaks for, and what it may read. */
export interface Principal {
  /** The token's `sub`, whatever it names ('' when it has none): who a publisher's quota is kept for. */
  subject: string
  /** The Stellar account (or contract) of a user token; undefined for a service token. */
  account: string | undefined
  scopes: ReadonlySet<string>
  /** Stream ids granted by the `streams` claim. */
  streams: ReadonlySet<string>
  /** When the token stops being accepted (ms since the epoch, tolerance included), if it expires. */
  acceptedUntil: number | undefined
}

const strings = (value: unknown): string[] =>
  Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : []

/** Reads the claims of a verified token: `sub`, `scope` (space-separated) or `scopes`, `streams`, `exp`. */
export function principalFromClaims (claims: Record<string, unknown>, clockToleranceS: number): Principal {
  const scopes = new Set([
    ...(typeof claims.scope === 'string' ? claims.scope.split(' ').filter(Boolean) : []),
    ...strings(claims.scopes)
  ])
  const subject = typeof claims.sub === 'string' ? claims.sub : ''
  return {
    subject,
    account: isStellarAddress(subject) ? subject : undefined,
    scopes,
    streams: new Set(strings(claims.streams)),
    acceptedUntil: typeof claims.exp === 'number' ? (claims.exp + clockToleranceS) * 1000 : undefined
  }
}

/**
 * The filters as a principal reads them: `all=true` from a user's token without `events:all` is
 * everything of its own account, as `users=<sub>` (FlowFi's meaning: the user's own streams, and what
 * is addressed to it), not a refusal.
 */
export function filtersOf (principal: Principal, filters: Filters): Filters {
  const { account } = principal
  if (!filters.all || principal.scopes.has(SCOPE_ALL) || account === undefined) return filters
  return { all: false, streams: filters.streams, users: [...new Set([...filters.users, account])] }
}

/**
 * The first filter of a subscription that the principal may not read, or undefined when it may read
 * them all. A user reads its own account's events and the streams it takes part in or was granted;
 * `events:all` reads everything.
 */
export function refusedFilter (principal: Principal, filters: Filters, participantsOf: (streamId: string) => readonly string[]):
  string | undefined {
  if (principal.scopes.has(SCOPE_ALL)) return undefined
  if (filters.all) return 'all=true'
  const user = filters.users.find(key => key !== principal.account)
  if (user !== undefined) return `users=${user}`
  const stream = filters.streams.find(id => !principal.streams.has(id) &&
    !(principal.account !== undefined && participantsOf(id).includes(principal.account)))
  return stream === undefined ? undefined : `streams=${stream}`
}

/** The credentials of an `Authorization: Bearer <token>` header (the scheme in any case). */
export function bearerToken (authorization: string | undefined): string | undefined {
  return /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '')?.[1]
}

/**
 * The token of a request: `Authorization: Bearer`, then the cookie, then `access_token`, then `token`;
 * a query parameter given twice is named instead (which of the two would be a guess).
 */
export function tokenOf (headers: Record<string, string | string[] | undefined>, query: Record<string, unknown>,
  cookieName: string): string | { repeated: string } | undefined {
  const bearer = bearerToken(headers.authorization as string | undefined)
  if (bearer !== undefined) return bearer
  for (const pair of String(headers.cookie ?? '').split(';')) {
    const at = pair.indexOf('=')
    if (at > 0 && pair.slice(0, at).trim() === cookieName) return decodedOrAsIs(pair.slice(at + 1).trim())
  }
  for (const name of TOKEN_PARAMETERS) {
    const value = query[name]
    if (Array.isArray(value)) return { repeated: name }
    if (typeof value === 'string' && value !== '') return value
  }
  return undefined
}

/** A percent-encoded cookie value decoded; one that is not valid encoding as sent (it fails verification). */
function decodedOrAsIs (value: string): string {
  try {
    return decodeURIComponent(value)
  } catch {
    return value
  }
}
