import type { Balancer } from './resuming-client.js'
import { sleep } from './scenario.js'

export const MAX_IN_FLIGHT = 16

/**
 * A publisher at a steady rate over `POST /events/publish`, one event per request, a few requests
 * in flight at most (a slow answer does not hold the next event back), spread over the balancer's targets. A `503` is tried
 * again after a moment; so is a request whose connection failed, on the next target: its event may
 * or may not be in the log, which is why the scenarios compare the clients with the log itself.
 */
export class SteadyPublisher {
  readonly accepted: string[] = []
  refused503 = 0
  /** Requests whose outcome is unknown: the connection died, or the 503 said "may or may not". */
  ambiguous = 0
  refusedConnections = 0
  otherStatuses = new Map<number, number>()
  /** From the first attempt to the 202, per event. */
  readonly latencyMs: number[] = []
  #stopped = false
  #done: Promise<void> | undefined

  constructor (readonly balancer: Balancer, readonly perSecond: number, readonly headers: Record<string, string> = {}) {}

  /** Publishes until `stop()`, or `count` events. */
  start (count = Number.POSITIVE_INFINITY): void {
    this.#done = this.#run(count)
  }

  async stop (): Promise<void> {
    this.#stopped = true
    await this.#done
  }

  async #run (count: number): Promise<void> {
    const began = Date.now()
    const inFlight = new Set<Promise<void>>()
    for (let seq = 0; seq < count && !this.#stopped; seq++) {
      const due = began + seq * 1000 / this.perSecond
      if (due > Date.now()) await sleep(due - Date.now())
      if (inFlight.size >= MAX_IN_FLIGHT) await Promise.race(inFlight)
      const sent = Date.now()
      const request = this.#deliver(seq).then(() => {
        this.latencyMs.push(Date.now() - sent)
        inFlight.delete(request)
      })
      inFlight.add(request)
    }
    await Promise.all(inFlight)
  }

  async #deliver (seq: number): Promise<void> {
    for (let attempt = 0; !this.#stopped; attempt++) {
      const outcome = await this.#publish(seq, attempt)
      if (outcome === 'accepted') return
      if (outcome === 'later') await sleep(100)
    }
  }

  /** One attempt: the event is in the log for sure, or to be tried again now (on the next target) or in a moment. */
  async #publish (seq: number, attempt: number): Promise<'accepted' | 'now' | 'later'> {
    const url = this.balancer.pick(seq, attempt)
    try {
      const response = await fetch(`${url}/events/publish`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...this.headers },
        body: JSON.stringify({ event: 'stream.cancelled', data: { streamId: 'faults', seq } }),
        signal: AbortSignal.timeout(10_000)
      })
      const body = await response.json() as { id?: string, message?: string }
      if (response.status === 202) {
        this.accepted.push(body.id!)
        return 'accepted'
      }
      if (response.status === 503) {
        this.refused503++
        if (body.message?.includes('may or may not') === true) this.ambiguous++
      } else {
        this.otherStatuses.set(response.status, (this.otherStatuses.get(response.status) ?? 0) + 1)
      }
    } catch (error) {
      // A refused connection sent nothing; any other failure may have come after the append.
      if ((error as { cause?: { code?: string } }).cause?.code !== 'ECONNREFUSED') {
        this.ambiguous++
        return 'later'
      }
      this.refusedConnections++
      return 'now'
    }
    return 'later'
  }
}
