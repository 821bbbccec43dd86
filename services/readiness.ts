import type { Fanout } from './fanout.js'

/** What `/readyz` answers, and what the `sse_ready` gauge says: one rule for both. */
export type Readiness = 'ready' | 'draining' | 'redis_unavailable'

/** `readyRequiresRedis`: whether a Redis outage makes the instance unready (READY_REQUIRES_REDIS). */
export function readiness (draining: boolean, fanout: Fanout, readyRequiresRedis: boolean): Readiness {
  if (draining) return 'draining'
  if (readyRequiresRedis && !fanout.redisUp) return 'redis_unavailable'
  return 'ready'
}
