import { connect } from 'node:net'
import { runEntry } from '../../helpers/process.js'
import { freePort } from '../../helpers/redis.js'
import { waitUntil } from '../../helpers/app.js'
import type { Cleanup } from './scenario.js'
import { ScenarioFailure } from './scenario.js'

/**
 * Limits loose enough for a test whose every client comes from 127.0.0.1: the per-address caps
 * would otherwise refuse the second thousand streams of one "address".
 */
export const LOOPBACK_LIMITS: Record<string, string> = {
  MAX_CONNECTIONS_PER_IP: '1000000',
  SUBSCRIBE_RATE_PER_MINUTE: '1000000',
  RATE_LIMIT_PER_MINUTE: '10000000',
  PUBLISH_RATE_PER_SECOND: '1000000'
}

/** The service as its own process (`server.ts`), on a free loopback port, `/metrics` on another. */
export class Instance {
  #expectedExit = false
  #exit: { code: number | null, signal: NodeJS.Signals | null } | undefined

  private constructor (readonly name: string, readonly url: string, readonly metricsUrl: string,
    readonly process: ReturnType<typeof runEntry>) {
    process.exited.then(([code, signal]) => { this.#exit = { code, signal } }, () => {})
  }

  static async start (cleanup: Cleanup, name: string, env: Record<string, string> = {}): Promise<Instance> {
    const port = await freePort()
    const metricsPort = await freePort()
    const child = runEntry('server', [], {
      HOST: '127.0.0.1', PORT: String(port), METRICS_PORT: String(metricsPort), INSTANCE_ID: name, LOG_LEVEL: 'warn', ...LOOPBACK_LIMITS, ...env
    })
    const instance = new Instance(name, `http://127.0.0.1:${port}`, `http://127.0.0.1:${metricsPort}`, child)
    cleanup.teardown(() => instance.kill('SIGKILL'))
    // The main port may speak h2c only, with nothing for fetch: it is up once it takes connections.
    await waitUntil(`instance ${name} listens`, async () => {
      instance.assertAlive()
      return await acceptsConnections(port)
    }, 20_000)
    return instance
  }

  /** Fails the scenario when the process ended without being told to. */
  assertAlive (): void {
    if (this.#exit !== undefined && !this.#expectedExit) {
      const { stdout, stderr } = this.process.output()
      throw new ScenarioFailure(`instance ${this.name} crashed (code ${this.#exit.code}, signal ${this.#exit.signal}): ` +
        `${(stderr + stdout).slice(-2000)}`)
    }
  }

  /** Sends `signal` and resolves with the exit code once the process has gone. */
  async kill (signal: NodeJS.Signals): Promise<number | null> {
    this.#expectedExit = true
    if (this.#exit === undefined) this.process.child.kill(signal)
    const [code] = await this.process.exited
    return code
  }

  async stats (): Promise<any> {
    return await (await fetch(`${this.url}/events/stats`)).json()
  }

  /** The value of one sample of `/metrics` (the first line naming it, labels included). */
  async metric (sample: string): Promise<number> {
    const text = await (await fetch(`${this.metricsUrl}/metrics`)).text()
    const line = text.split('\n').find(entry => entry.startsWith(`${sample} `))
    if (line === undefined) throw new ScenarioFailure(`no ${sample} in /metrics of ${this.name}`)
    return Number(line.slice(sample.length + 1))
  }

  /** Open file descriptors of the process (Linux). */
  async fds (): Promise<number> {
    return await this.metric('process_open_fds')
  }

  async rss (): Promise<number> {
    return await this.metric('process_resident_memory_bytes')
  }
}

async function acceptsConnections (port: number): Promise<boolean> {
  return await new Promise(resolve => {
    const socket = connect(port, '127.0.0.1')
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}
