import type { Filters, Subscriber } from './subscription-index.js'
import type { CloseReason } from './delivery-metrics.js'
import type { Sink } from './transport/sink.js'

/**
 * One open event stream as the broker sees it: its filters, what it has been sent, and the sink its
 * frames go to (how they go on the wire is the sink's business).
 */
export class SseConnection implements Subscriber {
  matchRound = 0
  /** The last flush that checked this connection for a slow consumer (see EventBroker). */
  flushMark = 0
  eventsSent = 0
  /** In the subscription index, receiving live events (false while its replay is written). */
  live = false
  /** Why it ended, once the broker has let it go. */
  closeReason: CloseReason | undefined
  /** When the token it was opened with stops being accepted (ms since the epoch), if ever. */
  acceptedUntil: number | undefined
  readonly openedAt = Date.now()

  constructor (readonly sink: Sink, readonly filters: Filters) {}
}
