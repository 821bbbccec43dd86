import { randomUUID } from 'node:crypto'
import fp from 'fastify-plugin'
import type { FastifyPluginAsync } from 'fastify'
import type { Redis } from 'ioredis'
import { ConnectionCounter, type LimitVerdict } from '../services/connection-counter.js'
import { ClusterConnectionCounter } from '../services/redis/cluster-connection-counter.js'

/** Caps on concurrent event streams: per client address (across the cluster with Redis), and per instance. */
export interface ConnectionLimits {
  readonly maxPerAddress: number
  /** Takes a place for a stream from `address`, or says which cap stands in the way. */
  acquire (address: string): LimitVerdict | Promise<LimitVerdict>
  /** Gives back a place taken by `acquire`. */
  release (address: string): void
  /** Streams open from one address on this instance. */
  openFrom (address: string): number
}

declare module 'fastify' {
  interface FastifyInstance {
    connectionLimits: ConnectionLimits
  }
}

export interface ConnectionLimiterOptions {
  maxConnectionsPerIp: number
  maxConnections: number
  /** With Redis: the per-address cap counts every instance's streams. */
  cluster?: {
    redis: Redis
    prefix: string
    instanceId: string
    /** This instance's liveness is refreshed this often, and lapses after three missed refreshes. */
    heartbeatMs: number
  }
}

const connectionLimiter: FastifyPluginAsync<ConnectionLimiterOptions> = async (app, options) => {
  let local: ConnectionCounter
  try {
    local = new ConnectionCounter(options.maxConnectionsPerIp, options.maxConnections)
  } catch (error) {
    throw new TypeError(`connection-limiter: ${(error as Error).message}`)
  }
  const cluster = options.cluster
  if (cluster === undefined) {
    app.decorate('connectionLimits', local)
    return
  }

  const log = app.log.child({ plugin: 'connection-limiter' })
  const limits = new ClusterConnectionCounter(local, cluster.redis, {
    prefix: cluster.prefix,
    owner: `${cluster.instanceId}:${randomUUID()}`,
    livenessMs: 3 * cluster.heartbeatMs
  }, error => log.warn({ err: error }, 'Redis did not answer: the per-address cap counts this instance\'s streams only until it is back'))
  app.decorate('connectionLimits', limits satisfies ConnectionLimits)

  // Each heartbeat: this instance is alive, and counts that could not be written are written now.
  const refresh = (all = false): void => {
    limits.refresh().catch((error: Error) => log.debug({ err: error }, 'liveness not refreshed'))
    void limits.reconcile(all)
  }
  await limits.refresh()
  const timer = setInterval(refresh, cluster.heartbeatMs)
  timer.unref()
  const reconnected = (): void => refresh(true)
  cluster.redis.on('ready', reconnected)
  app.addHook('onClose', async () => {
    clearInterval(timer)
    cluster.redis.off('ready', reconnected)
    await limits.forget().catch((error: Error) => log.warn({ err: error }, 'this instance\'s places stay in Redis until its liveness lapses'))
  })
}

export default fp(connectionLimiter, { name: 'connection-limiter', fastify: '5.x' })
