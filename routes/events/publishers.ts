import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { BEARER_CHALLENGE, bearerToken, SCOPE_PUBLISH } from '../../services/principal.js'

/** Who a publish request speaks for: the key of its quota, or why it may not publish. */
export type PublisherIdentity =
  | { ok: true, publisher: string, described: 'this publisher' | 'this address' }
  | { ok: false, status: 401 | 403, headers: Record<string, string>, body: { error: string, message: string } }

export interface PublisherOptions {
  /** When set, `Authorization: Bearer <publishToken>` publishes (as one publisher). */
  publishToken: string | undefined
}

const digest = (value: string): Buffer => createHash('sha256').update(value).digest()

const unauthorized = (error: string, message: string): PublisherIdentity =>
  ({ ok: false, status: 401, headers: BEARER_CHALLENGE, body: { error, message } })

/**
 * Tells publishers apart: PUBLISH_TOKEN is one publisher, a JWT with the events:publish scope is the
 * publisher its `sub` names; an open endpoint (development) takes each client address for one.
 */
export function publisherIdentifier (app: FastifyInstance, options: PublisherOptions): (request: FastifyRequest) => PublisherIdentity {
  const expected = options.publishToken === undefined ? undefined : digest(options.publishToken)
  const auth = app.auth
  return request => {
    // Digests are compared, so the time taken says nothing about the token, not even its length.
    const bearer = bearerToken(request.headers.authorization)
    if (expected !== undefined && bearer !== undefined && timingSafeEqual(digest(bearer), expected)) {
      return { ok: true, publisher: 'token', described: 'this publisher' }
    }
    if (auth.mode === 'jwt') {
      const verdict = auth.authenticate(request)
      if (!verdict.ok) return unauthorized(verdict.error, `${verdict.message}; or use PUBLISH_TOKEN`)
      if (!verdict.principal.scopes.has(SCOPE_PUBLISH)) {
        return { ok: false, status: 403, headers: {}, body: { error: 'forbidden', message: `this token lacks the ${SCOPE_PUBLISH} scope` } }
      }
      return { ok: true, publisher: `sub:${verdict.principal.subject}`, described: 'this publisher' }
    }
    if (expected === undefined) return { ok: true, publisher: `address:${request.ip}`, described: 'this address' }
    return unauthorized('unauthorized', 'publishing needs Authorization: Bearer <PUBLISH_TOKEN>')
  }
}
