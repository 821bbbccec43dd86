import fp from 'fastify-plugin'
import fastifyJwt from '@fastify/jwt'
import type { FastifyPluginCallback, FastifyRequest } from 'fastify'
import type { AuthConfig } from '../services/config.js'
import { principalFromClaims, tokenOf, type Principal } from '../services/principal.js'

/** A request's verdict: who it speaks for, or why it was not believed (always a 401). */
export type Authentication =
  | { ok: true, principal: Principal }
  | { ok: false, error: string, message: string }

declare module 'fastify' {
  interface FastifyInstance {
    auth:
      | { mode: 'off' }
      | {
        mode: 'jwt'
        /** Finds and verifies the request's token. */
        authenticate (request: FastifyRequest): Authentication
      }
  }
}

// fast-jwt's codes, told to the client as what failed; the token itself is never echoed.
const FAILURES: Record<string, string> = {
  FAST_JWT_EXPIRED: 'token_expired',
  FAST_JWT_INACTIVE: 'token_not_yet_valid',
  FAST_JWT_INVALID_SIGNATURE: 'invalid_signature',
  FAST_JWT_MISSING_SIGNATURE: 'invalid_algorithm',
  FAST_JWT_INVALID_ALGORITHM: 'invalid_algorithm',
  FAST_JWT_INVALID_CLAIM_VALUE: 'invalid_claim',
  FAST_JWT_MISSING_REQUIRED_CLAIM: 'invalid_claim',
  FAST_JWT_INVALID_CLAIM_TYPE: 'invalid_claim'
}

const auth: FastifyPluginCallback<AuthConfig> = (app, options, done) => {
  if (options.mode === 'off') {
    app.log.warn('AUTH_MODE=off: anyone can subscribe to every event; set AUTH_MODE=jwt in production')
    app.decorate('auth', { mode: 'off' as const })
    return done()
  }

  app.register(fastifyJwt, {
    secret: options.publicKey === undefined ? options.secret! : { public: options.publicKey },
    verify: {
      algorithms: [options.algorithm], // pinned: no "none", no algorithm confusion
      ...(options.issuer === undefined ? {} : { allowedIss: options.issuer }),
      ...(options.audience === undefined ? {} : { allowedAud: options.audience }),
      // A configured issuer or audience is required, not only checked when present; so is an expiry.
      requiredClaims: [
        ...(options.requireExp ? ['exp'] : []),
        ...(options.issuer === undefined ? [] : ['iss']),
        ...(options.audience === undefined ? [] : ['aud'])
      ],
      clockTolerance: options.clockToleranceS * 1000
    }
  })
  app.after(() => {
    app.decorate('auth', {
      mode: 'jwt' as const,
      authenticate (request: FastifyRequest): Authentication {
        const token = tokenOf(request.headers, request.query as Record<string, unknown>, options.cookieName)
        if (typeof token === 'object') {
          return { ok: false, error: 'invalid_token', message: `the ${token.repeated} query parameter is given more than once: send one token` }
        }
        if (token === undefined) {
          return {
            ok: false,
            error: 'missing_token',
            message: `no token: send Authorization: Bearer <token>, the ${options.cookieName} cookie, or the access_token or token query parameter`
          }
        }
        try {
          return { ok: true, principal: principalFromClaims(app.jwt.verify(token), options.clockToleranceS) }
        } catch (error) {
          const { code, message } = error as { code: string, message: string }
          return { ok: false, error: FAILURES[code] ?? 'invalid_token', message: `the token was refused: ${message}` }
        }
      }
    })
  })
  done()
}

export default fp(auth, { name: 'auth', fastify: '5.x' })
