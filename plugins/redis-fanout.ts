import fp from 'fastify-plugin'
import type { FastifyPluginAsync } from 'fastify'
import type { RedisConfig } from '../services/config.js'
import { memoryFanout, type Fanout } from '../services/fanout.js'
import { RedisFanout } from '../services/redis/redis-fanout.js'

declare module 'fastify' {
  interface FastifyInstance {
    fanout: Fanout
  }
}

export interface RedisFanoutOptions {
  /** Undefined: a single instance, events fan out in memory. */
  redis: RedisConfig | undefined
  instanceId: string
  history: { maxEvents: number, maxAgeMs: number }
}

type RedisLogOptions = RedisFanoutOptions & { redis: RedisConfig }

/** With Redis: events go through the Redis log to every instance (RedisFanout), on the `redis` plugin's connections. */
const redisLog: FastifyPluginAsync<RedisLogOptions> = async (app, options) => {
  const config = options.redis
  // The channel's messages are bounded and parsed as HTTP bodies are, with the app's own settings.
  const { bodyLimit, onProtoPoisoning, onConstructorPoisoning } = app.initialConfig
  const fanout = new RedisFanout(app.redisConnections, app.broker, {
    log: { prefix: config.prefix, ...options.history, participantsTtlS: config.participantsTtlS },
    bridge: {
      sources: config.channels,
      maxBytes: bodyLimit!,
      protoAction: onProtoPoisoning!,
      constructorAction: onConstructorPoisoning!,
      holder: options.instanceId,
      leaseMs: config.bridgeLeaseMs
    }
  }, app.log)
  app.decorate('fanout', fanout satisfies Fanout)
  app.addHook('onReady', async () => await fanout.start())
  app.addHook('onClose', async () => await fanout.stop())
}

const redisLogFanout = fp(redisLog, { name: 'redis-log-fanout', fastify: '5.x', dependencies: ['sse-broker', 'redis'] })

/**
 * Where published events go (`app.fanout`): without `REDIS_URL` straight into the broker, as a
 * single instance; with it, through the Redis log to every instance.
 */
const redisFanout: FastifyPluginAsync<RedisFanoutOptions> = async (app, options) => {
  if (options.redis === undefined) app.decorate('fanout', memoryFanout(app.broker))
  else await app.register(redisLogFanout, { ...options, redis: options.redis })
}

export default fp(redisFanout, { name: 'redis-fanout', fastify: '5.x', dependencies: ['sse-broker'] })
