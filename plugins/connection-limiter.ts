import { randomUUID } from 'node:crypto'
import fp from 'fastify-plugin'
import type { FastifyPluginAsync } from 'fastify'
import { ConnectionCounter } from '../services/connection-counter.js'
import type { ConnectionLimits } from '../services/connection-limits.js'
import { ClusterConnectionCounter } from '../services/redis/cluster-connection-counter.js'

declare module 'fastify' {
  interface FastifyInstance {
    connectionLimits: ConnectionLimits
  }
}

/** With Redis: the per-address cap counts every instance's streams. */
export interface ClusterOptions {
  prefix: string
  instanceId: string
  /** This instance's liveness is refreshed this often, and lapses after three missed refreshes. */
  heartbeatMs: number
}

export interface ConnectionLimiterOptions {
  maxConnectionsPerIp: number
  maxConnections: number
  cluster?: ClusterOptions
}

/** The per-address cap across the cluster, counted in Redis on the `redis` plugin's commands connection. */
const clusterLimits: FastifyPluginAsync<ClusterOptions & { local: ConnectionCounter }> = async (app, options) => {
  const log = app.log.child({ plugin: 'connection-limiter' })
  const redis = app.redis
  const limits = new ClusterConnectionCounter(options.local, redis, {
    prefix: options.prefix,
    owner: `${options.instanceId}:${randomUUID()}`,
    livenessMs: 3 * options.heartbeatMs
  }, error => log.warn({ err: error }, 'Redis did not answer: the per-address cap counts this instance\'s streams only until it is back'))
  app.decorate('connectionLimits', limits satisfies ConnectionLimits)

  // Each heartbeat: this instance is alive, and counts that could not be written are written now.
  const refresh = (all = false): void => {
    limits.refresh().catch((error: Error) => log.debug({ err: error }, 'liveness not refreshed'))
    void limits.reconcile(all)
  }
  await limits.refresh()
  const timer = setInterval(refresh, options.heartbeatMs)
  timer.unref()
  const reconnected = (): void => refresh(true)
  redis.on('ready', reconnected)
  app.addHook('onClose', async () => {
    clearInterval(timer)
    redis.off('ready', reconnected)
    await limits.forget().catch((error: Error) => log.warn({ err: error }, 'this instance\'s places stay in Redis until its liveness lapses'))
  })
}

const clusterConnectionLimits = fp(clusterLimits, { name: 'cluster-connection-limits', fastify: '5.x', dependencies: ['redis'] })

const connectionLimiter: FastifyPluginAsync<ConnectionLimiterOptions> = async (app, options) => {
  let local: ConnectionCounter
  try {
    local = new ConnectionCounter(options.maxConnectionsPerIp, options.maxConnections)
  } catch (error) {
    throw new TypeError(`connection-limiter: ${(error as Error).message}`)
  }
  if (options.cluster === undefined) app.decorate('connectionLimits', local satisfies ConnectionLimits)
  else await app.register(clusterConnectionLimits, { ...options.cluster, local })
}

export default fp(connectionLimiter, { name: 'connection-limiter', fastify: '5.x' })
