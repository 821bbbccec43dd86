import { setTimeout as sleep } from 'node:timers/promises'
import fp from 'fastify-plugin'
import type { FastifyPluginCallback } from 'fastify'
import { EventBroker, type EventBrokerOptions } from '../services/event-broker.js'
import { encodeComment, encodeRetry } from '../services/sse-frame.js'

declare module 'fastify' {
  interface FastifyInstance {
    broker: EventBroker
    /**
     * Graceful drain: readiness fails at once; after `drainDelayMs` every stream gets a retry hint
     * with jitter and ends cleanly, spread over `drainWindowMs`. Call before `close()`.
     */
    drain (): Promise<void>
  }
}

export interface SseBrokerOptions extends EventBrokerOptions {
  heartbeatMs: number
  retryMs: number
  drainDelayMs: number
  drainWindowMs: number
}

const HEARTBEAT = encodeComment('ping')

const sseBroker: FastifyPluginCallback<SseBrokerOptions> = (app, options, done) => {
  for (const name of ['heartbeatMs', 'retryMs', 'maxReplay', 'maxBufferedBytes'] as const) {
    if (!Number.isInteger(options[name]) || options[name] < 1) {
      return done(new TypeError(`sse-broker: ${name} must be a positive integer`))
    }
  }
  const { maxStreamAgeMs } = options
  if (maxStreamAgeMs !== undefined && (!Number.isInteger(maxStreamAgeMs) || maxStreamAgeMs < 1)) {
    return done(new TypeError('sse-broker: maxStreamAgeMs must be a positive integer, or unset'))
  }
  const broker = new EventBroker(options)
  app.decorate('broker', broker)

  // A retry hint between one half and one and a half RETRY_MS: the clients of a closing instance
  // come back spread out rather than all at once.
  const farewell = (): Buffer => encodeRetry(options.retryMs * (0.5 + Math.random()))

  app.decorate('drain', async () => {
    broker.beginDrain()
    app.log.info({ delayMs: options.drainDelayMs, windowMs: options.drainWindowMs }, 'draining: not ready; streams end after the delay')
    await sleep(options.drainDelayMs)
    await broker.endAll(options.drainWindowMs, farewell)
    app.log.info('drained: every stream has ended')
  })

  // One timer for all connections: a timer each would cost memory and wake-ups per connection.
  const heartbeat = setInterval(() => broker.broadcast(HEARTBEAT), options.heartbeatMs)
  heartbeat.unref()
  // Likewise one timer ends the streams whose token has expired, and those past their age.
  const expiry = setInterval(() => {
    broker.expire()
    broker.endAged(farewell)
  }, 1000)
  expiry.unref()

  // Open streams never end by themselves; end what is left so that close() does not wait forever.
  app.addHook('preClose', async () => {
    clearInterval(heartbeat)
    clearInterval(expiry)
    broker.beginDrain()
    await broker.endAll(0, farewell)
  })
  done()
}

export default fp(sseBroker, { name: 'sse-broker', fastify: '5.x' })
