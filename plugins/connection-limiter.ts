import fp from 'fastify-plugin'
import type { FastifyPluginCallback } from 'fastify'
import { ConnectionCounter } from '../services/connection-counter.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Caps on concurrent event streams, per client address and in all. */
    connectionLimits: ConnectionCounter
  }
}

export interface ConnectionLimiterOptions {
  maxConnectionsPerIp: number
  maxConnections: number
}

const connectionLimiter: FastifyPluginCallback<ConnectionLimiterOptions> = (app, options, done) => {
  try {
    app.decorate('connectionLimits', new ConnectionCounter(options.maxConnectionsPerIp, options.maxConnections))
  } catch (error) {
    return done(new TypeError(`connection-limiter: ${(error as Error).message}`))
  }
  done()
}

export default fp(connectionLimiter, { name: 'connection-limiter', fastify: '5.x' })
