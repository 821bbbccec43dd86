import { randomBytes } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import { Writable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import { buildApp, type BuildOptions } from '../../app.js'
import { loadConfig } from '../../services/config.js'
import { encodeStellarAccountId } from '../../services/stellar-key.js'

interface Teardown {
  teardown (fn: () => unknown): void
}

export interface RunningApp {
  app: FastifyInstance
  /** `http://127.0.0.1:<port>` (`https://` with TLS_CERT and TLS_KEY) */
  url: string
  /** Every log line written so far, parsed. */
  logs: Array<Record<string, unknown>>
}

/** A fresh app on a free loopback port, closed when the test ends; `options` go to buildApp (its log stream is this one's). */
export async function startApp (t: Teardown, env: Record<string, string> = {}, options: Omit<BuildOptions, 'logStream'> = {}): Promise<RunningApp> {
  const logs: Array<Record<string, unknown>> = []
  const stream = new Writable({
    write (chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line !== '') logs.push(JSON.parse(line))
      done()
    }
  })
  const config = loadConfig({ HOST: '127.0.0.1', PORT: '0', METRICS_PORT: '0', ...env })
  const app = buildApp(config, { ...options, logStream: stream })
  t.teardown(() => app.close())
  await app.listen({ host: config.host, port: config.port })
  const { port } = app.server.address() as AddressInfo
  return { app, url: `${config.listener.kind === 'tls' ? 'https' : 'http'}://127.0.0.1:${port}`, logs }
}

/** A fresh, valid Stellar account id. */
export function randomAccountId (): string {
  return encodeStellarAccountId(randomBytes(32))
}

/** POSTs JSON to `/events/publish` (with a query, if given); returns the status and the parsed body. */
export async function publish (url: string, body: unknown, headers: Record<string, string> = {}, query = ''):
  Promise<{ status: number, body: any }> {
  const response = await fetch(`${url}/events/publish${query === '' ? '' : `?${query}`}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body)
  })
  return { status: response.status, body: await response.json() }
}

/** Polls `condition` until it holds; rejects after `timeoutMs` naming `what`. */
export async function waitUntil (what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!await condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`)
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}
