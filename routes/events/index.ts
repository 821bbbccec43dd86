import type { FastifyPluginCallback } from 'fastify'
import { publishRoute, type PublishOptions } from './publish.js'
import { statsRoute, type StatsOptions } from './stats.js'
import { subscribeRoute, type SubscribeOptions } from './subscribe.js'

export interface EventsOptions {
  /** Where the API is served: '' for /events/..., '/v1' for /v1/events/... (FlowFi's frontend). */
  prefixes: readonly string[]
  subscribe: SubscribeOptions
  publish: PublishOptions
  stats: StatsOptions
}

/**
 * The events API: subscribe, publish, stats. Each route is made once and served under every prefix,
 * so that a rate limit, a publisher's quota or an uptime is one for all of them (the connection caps
 * and the counters are the app's already).
 */
const events: FastifyPluginCallback<EventsOptions> = (app, options, done) => {
  const routes = [
    subscribeRoute(app, options.subscribe),
    publishRoute(app, options.publish),
    statsRoute(app, options.stats)
  ]
  for (const prefix of options.prefixes) {
    for (const route of routes) if (route !== undefined) app.register(route, { prefix })
  }
  done()
}

export default events
