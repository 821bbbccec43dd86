import { once } from 'node:events'
import net from 'node:net'
import { sleep, type Cleanup } from './scenario.js'

/** What the proxy does to the bytes it forwards; changed while it runs, for every connection. */
export interface Impairment {
  /** Delay added to each chunk of the service's bytes, plus a random part up to `jitterMs` (order kept). */
  latencyMs: number
  jitterMs: number
  /** The service's bytes to the client cut into one-byte segments. */
  singleBytes: boolean
}


class Link {
  /** The writes toward the client, one after another, so that delayed chunks keep their order. */
  chain: Promise<void> = Promise.resolve()
  forwarded = 0
  /** Reset in the middle of the chunk that takes `forwarded` to this. */
  cutAfter: number | undefined
  cut = false

  constructor (readonly client: net.Socket, readonly upstream: net.Socket) {}

  reset (): void {
    this.client.resetAndDestroy()
    this.upstream.destroy()
  }
}

/**
 * A user-space TCP proxy between the clients and the service (no kernel tool such as netem is at
 * hand): it adds latency and jitter, cuts the service's bytes into single bytes, resets connections
 * in the middle of what it forwards, or goes silent.
 */
export class FaultyProxy {
  readonly impairment: Impairment = { latencyMs: 0, jitterMs: 0, singleBytes: false }
  readonly links = new Set<Link>()
  /** Connections still to be reset once they have forwarded `cutNewAfterBytes` to the client. */
  cutNewCount = 0
  cutNewAfterBytes = 0
  resets = 0

  private constructor (readonly server: net.Server, readonly targetPort: number) {}

  get url (): string {
    return `http://127.0.0.1:${(this.server.address() as net.AddressInfo).port}`
  }

  static async start (cleanup: Cleanup, targetUrl: string): Promise<FaultyProxy> {
    const server = net.createServer()
    const proxy = new FaultyProxy(server, Number(new URL(targetUrl).port))
    server.on('connection', client => proxy.#link(client))
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    cleanup.teardown(async () => {
      for (const link of proxy.links) link.reset()
      server.close()
    })
    return proxy
  }

  /**
   * The open connections go silent: nothing is read or forwarded either way any more, and nothing
   * is reset, so the service's bytes pile up in the kernel's buffers, then in its own.
   */
  silence (): void {
    for (const link of this.links) {
      link.client.pause()
      link.upstream.pause()
    }
  }

  /** Resets every open connection in the middle of the next chunk of the service's bytes. */
  cutOpenMidChunk (): void {
    for (const link of this.links) link.cutAfter = link.forwarded + 1
  }

  #link (client: net.Socket): void {
    const upstream = net.connect(this.targetPort, '127.0.0.1')
    const link = new Link(client, upstream)
    if (this.cutNewCount > 0) {
      this.cutNewCount--
      link.cutAfter = this.cutNewAfterBytes
    }
    this.links.add(link)
    client.setNoDelay(true)
    const drop = (): void => {
      this.links.delete(link)
      client.destroy()
      upstream.destroy()
    }
    client.on('error', drop).on('close', drop)
    upstream.on('error', drop).on('close', drop)
    client.on('data', chunk => upstream.write(chunk))
    upstream.on('data', (chunk: Buffer) => this.#toClient(link, chunk))
  }

  #toClient (link: Link, chunk: Buffer): void {
    const { latencyMs, jitterMs, singleBytes } = this.impairment
    if (link.cut) return
    const due = Date.now() + latencyMs + Math.random() * jitterMs
    const client = link.client
    const send = async (bytes: Buffer): Promise<void> => {
      if (!client.destroyed) await new Promise(resolve => client.write(bytes, resolve))
    }
    if (link.cutAfter !== undefined && link.forwarded + chunk.length >= link.cutAfter) {
      // Half of the chunk, then a reset: the client holds part of a frame.
      link.cut = true
      link.chain = link.chain.then(async () => {
        await send(chunk.subarray(0, Math.floor(chunk.length / 2)))
        this.resets++
        link.reset()
      })
      return
    }
    link.forwarded += chunk.length
    link.chain = link.chain.then(async () => {
      if (due > Date.now()) await sleep(due - Date.now())
      if (!singleBytes) return await send(chunk)
      // One write at a time, each handed to the kernel (no Nagle) before the next: a segment each.
      for (let at = 0; at < chunk.length; at++) await send(chunk.subarray(at, at + 1))
    })
  }
}
