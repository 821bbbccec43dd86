import type { FastifyPluginCallback } from 'fastify'
import { version } from '../../services/version.js'
import type { Fanout } from '../../services/fanout.js'

function fanoutStats (fanout: Fanout) {
  if (fanout.mode === 'memory') return { mode: fanout.mode }
  return {
    mode: fanout.mode,
    redis: fanout.redisUp ? 'up' : 'down',
    bridging: fanout.bridging,
    lastId: fanout.lastId,
    channelMessages: fanout.channelMessages,
    skippedLogEntries: fanout.skippedLogEntries
  }
}

export interface StatsOptions {
  instanceId: string
}

/** `GET /events/stats`: what a person wants to see at a glance, from the same counters as /metrics. */
const stats: FastifyPluginCallback<StatsOptions> = (app, options, done) => {
  const startedAt = Date.now()

  app.get('/events/stats', () => {
    const now = Date.now()
    const { connections, published, delivered, history, trackedStreams } = app.broker.stats(now)
    const metrics = app.broker.metrics
    return {
      instanceId: options.instanceId,
      version,
      uptimeSeconds: Math.floor((now - startedAt) / 1000),
      draining: app.broker.draining,
      connections: {
        active: connections.total + connections.replaying,
        replaying: connections.replaying,
        direct: app.streamIntake.direct,
        byFilter: { all: connections.all, streams: connections.streams, users: connections.users },
        opened: metrics.connections.opened,
        rejected: {
          bad_request: metrics.connections.bad_request,
          draining: metrics.connections.draining,
          unavailable: metrics.connections.unavailable,
          too_many_per_ip: metrics.connections.too_many_per_ip,
          over_capacity: metrics.connections.over_capacity
        },
        reconnections: metrics.reconnections,
        closed: metrics.closes
      },
      events: {
        published: published.total,
        delivered: delivered.total,
        publishedPerSecond: published.perSecond,
        deliveredPerSecond: delivered.perSecond,
        publishedByType: metrics.published,
        rejected: metrics.rejected,
        replayed: metrics.replayed
      },
      resyncs: metrics.resyncs,
      slowConsumerDisconnects: metrics.slowConsumerDisconnects,
      bufferedBytes: app.broker.bufferedBytes(),
      history,
      // In Redis mode the participants live in Redis, which this does not count.
      trackedStreams: app.fanout.mode === 'memory' ? trackedStreams : null,
      fanout: fanoutStats(app.fanout)
    }
  })
  done()
}

export default stats
