import { startApp, type RunningApp } from './app.js'
import { redisEnv } from './redis.js'

interface Test {
  teardown (fn: () => unknown): void
}

export interface Deploy {
  /** The instance the clients connect to, on a port that stays the same across its restarts. */
  url: string
  /** The instance that stays up while the other restarts: where the backend publishes meanwhile. */
  replica: RunningApp
  /** The instance at `url` now. */
  readonly instance: RunningApp
  /** Stops the instance at `url` (a drain, if wanted, is the test's own `instance.app.drain()` before). */
  stop (): Promise<void>
  /** Starts a new instance at `url`: same Redis, same history. */
  start (): Promise<void>
}

/**
 * Two instances on the shared Redis, as a rolling deploy has them: the history of either is in Redis,
 * so a client that comes back to a restarted instance resumes where it left off.
 */
export async function startDeploy (t: Test, env: Record<string, string> = {}): Promise<Deploy> {
  const shared = redisEnv(t, env)
  const replica = await startApp(t, shared)
  let instance = await startApp(t, shared)
  const url = instance.url
  return {
    url,
    replica,
    get instance () { return instance },
    async stop () { await instance.app.close() },
    async start () { instance = await startApp(t, { ...shared, PORT: new URL(url).port }) }
  }
}
