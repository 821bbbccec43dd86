import type { FastifyPluginCallback } from 'fastify'
import { version } from '../../services/version.js'

export interface StatsOptions {
  instanceId: string
}

/** `GET /events/stats`: what a person wants to see at a glance. */
const stats: FastifyPluginCallback<StatsOptions> = (app, options, done) => {
  const startedAt = Date.now()

  app.get('/events/stats', () => {
    const now = Date.now()
    const stats = app.broker.stats(now)
    const { connections, published, delivered } = stats
    return {
      instanceId: options.instanceId,
      version,
      uptimeSeconds: Math.floor((now - startedAt) / 1000),
      draining: app.broker.draining,
      connections: {
        active: connections.total + connections.replaying,
        replaying: connections.replaying,
        byFilter: { all: connections.all, streams: connections.streams, users: connections.users }
      },
      events: {
        published: published.total,
        delivered: delivered.total,
        publishedPerSecond: published.perSecond,
        deliveredPerSecond: delivered.perSecond,
        replayed: stats.replayed
      },
      resyncs: stats.resyncs,
      slowConsumerDisconnects: stats.slowConsumerDisconnects,
      history: stats.history,
      trackedStreams: stats.trackedStreams
    }
  })
  done()
}

export default stats
