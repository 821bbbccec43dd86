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
    const { connections, published, delivered, trackedStreams } = app.broker.stats(now)
    return {
      instanceId: options.instanceId,
      version,
      uptimeSeconds: Math.floor((now - startedAt) / 1000),
      connections: {
        active: connections.total,
        byFilter: { all: connections.all, streams: connections.streams, users: connections.users }
      },
      events: {
        published: published.total,
        delivered: delivered.total,
        publishedPerSecond: published.perSecond,
        deliveredPerSecond: delivered.perSecond
      },
      trackedStreams
    }
  })
  done()
}

export default stats
