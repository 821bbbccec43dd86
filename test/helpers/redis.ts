import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:net'
import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import { waitUntil } from './app.js'

interface Test {
  teardown (fn: () => unknown): void
}

/** The shared Redis the tests use (`.ci/run` makes sure it answers). */
export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'

async function answers (url: string): Promise<boolean> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0 })
  client.on('error', () => {})
  const connected = await client.connect().then(() => true, () => false)
  client.disconnect()
  return connected
}

/**
 * Whether the shared Redis answers. When it does not, a test file is skipped with a message saying
 * so on a laptop, and fails in CI (`REQUIRE_REDIS` or `CI` set), which must have it.
 */
export async function redisAnswers (t: { plan (count: number, reason: string): void }, url = REDIS_URL): Promise<boolean> {
  if (await answers(url)) return true
  if (process.env.REQUIRE_REDIS !== undefined || process.env.CI !== undefined) throw new Error(`Redis does not answer at ${url}; CI needs it`)
  t.plan(0, `Redis does not answer at ${url}: start redis-server to run these tests`)
  return false
}

/**
 * Environment for an instance on the shared Redis, under a key prefix of this test's own, deleted after
 * it, and with a pub/sub channel of its own: channels are not keys, and every test file (and anything
 * else on this Redis) would otherwise hear every other's messages.
 */
export function redisEnv (t: Test, env: Record<string, string> = {}, url = REDIS_URL): Record<string, string> {
  const prefix = `flowfi-events-test:${randomBytes(6).toString('hex')}:`
  // A private Redis goes with its keys.
  if (url === REDIS_URL) {
    t.teardown(async () => {
      const client = new Redis(url)
      const keys = await client.keys(`${prefix}*`)
      if (keys.length > 0) await client.del(...keys)
      client.disconnect()
    })
  }
  const channel = `${prefix}stream-events`
  return {
    REDIS_URL: url,
    REDIS_PREFIX: prefix,
    REDIS_CHANNEL: channel,
    // The backend's channels too, under this test's prefix: `${prefix}sse:stream:<id>`, `${prefix}sse:user:<account>`.
    REDIS_CHANNELS: `${channel},${prefix}sse:stream:*,${prefix}sse:user:*`,
    BRIDGE_LEASE_MS: '1000',
    ...env
  }
}

/** A client of the shared Redis for the test itself (the FlowFi backend's role, or an inspector). */
export function redisClient (t: Test, url = REDIS_URL): Redis {
  const client = new Redis(url)
  client.on('error', () => {})
  t.teardown(() => client.disconnect())
  return client
}

/** A port nothing listens on now. */
export async function freePort (): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as { port: number }
  server.close()
  return port
}

/** A redis-server of the test's own, to stop and start again: the shared one is never restarted. */
export class PrivateRedis {
  #process!: ChildProcess
  #exited!: Promise<unknown>

  private constructor (readonly port: number) {}

  get url (): string {
    return `redis://127.0.0.1:${this.port}`
  }

  static async start (t: Test): Promise<PrivateRedis> {
    const redis = new PrivateRedis(await freePort())
    t.teardown(() => redis.kill())
    await redis.restart()
    return redis
  }

  /** Starts it (again) on the same port, empty: it keeps nothing on disk, like the machine's own. */
  async restart (): Promise<void> {
    this.#process = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      { stdio: 'ignore' })
    this.#exited = once(this.#process, 'exit')
    await waitUntil(`redis-server answers on port ${this.port}`, () => answers(this.url))
  }

  /** Kills it at once, as a crash would. */
  async kill (): Promise<void> {
    this.#process.kill('SIGKILL') // harmless when it is dead already
    await this.#exited
  }
}
