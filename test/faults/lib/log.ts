import { redisClient } from '../../helpers/redis.js'
import type { Cleanup } from './scenario.js'

/** The ids of every entry of the service's Redis log, oldest first: what every client must have. */
export async function logIds (cleanup: Cleanup, url: string, prefix: string): Promise<string[]> {
  const entries = await redisClient(cleanup, url).xrange(`${prefix}events`, '-', '+')
  return entries.map(([id]) => id)
}
