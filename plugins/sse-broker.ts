import fp from 'fastify-plugin'
import type { FastifyPluginCallback } from 'fastify'
import { EventBroker } from '../services/event-broker.js'
import { encodeComment } from '../services/sse-frame.js'

declare module 'fastify' {
  interface FastifyInstance {
    broker: EventBroker
  }
}

export interface SseBrokerOptions {
  heartbeatMs: number
  maxTrackedStreams: number
}

const HEARTBEAT = encodeComment('ping')

const sseBroker: FastifyPluginCallback<SseBrokerOptions> = (app, options, done) => {
  if (!Number.isInteger(options.heartbeatMs) || options.heartbeatMs < 1) {
    return done(new TypeError('sse-broker: heartbeatMs must be a positive integer'))
  }
  const broker = new EventBroker({ maxTrackedStreams: options.maxTrackedStreams })
  app.decorate('broker', broker)

  // One timer for all connections: a timer each would cost memory and wake-ups per connection.
  const heartbeat = setInterval(() => broker.broadcast(HEARTBEAT), options.heartbeatMs)
  heartbeat.unref()

  // Open streams never end by themselves; end them first so that close() does not wait forever.
  app.addHook('preClose', (done) => {
    clearInterval(heartbeat)
    broker.endAll()
    done()
  })
  done()
}

export default fp(sseBroker, { name: 'sse-broker', fastify: '5.x' })
