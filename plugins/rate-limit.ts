import fp from 'fastify-plugin'
import rateLimit from '@fastify/rate-limit'
import type { FastifyPluginAsync } from 'fastify'

export interface RateLimitOptions {
  /** Requests a minute from one client address, on every route that does not set its own limit. */
  perMinute: number
  /** With Redis: the counts are shared by every instance, under keys with this prefix. */
  redisPrefix?: string
}

/** The counts in Redis, on the `redis` plugin's commands connection; while Redis does not answer, requests are not limited. */
const sharedLimit: FastifyPluginAsync<Required<RateLimitOptions>> = async (app, options) => {
  await app.register(rateLimit, {
    max: options.perMinute,
    timeWindow: 60_000,
    redis: app.redis,
    nameSpace: `${options.redisPrefix}rate-limit:`,
    skipOnError: true
  })
}

const sharedRateLimit = fp(sharedLimit, { name: 'shared-rate-limit', fastify: '5.x', dependencies: ['redis'] })

/** A limit per client address for every route (@fastify/rate-limit); a route may set its own instead. */
const rateLimits: FastifyPluginAsync<RateLimitOptions> = async (app, options) => {
  if (options.redisPrefix === undefined) await app.register(rateLimit, { max: options.perMinute, timeWindow: 60_000 })
  else await app.register(sharedRateLimit, { ...options, redisPrefix: options.redisPrefix })
}

export default fp(rateLimits, { name: 'rate-limit', fastify: '5.x' })
