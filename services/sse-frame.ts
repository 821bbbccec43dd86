// Server-sent events framing, as the WHATWG HTML standard parses it
// (https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation).
// A field's value runs to the end of its line, and CR, LF and CRLF all end a line, so a line break
// inside `id:` or `event:` would start a new field and a blank line would end the frame early.

const LINE_BREAK = /\r\n|\r|\n/

/** Removes what would let a value escape its field: line breaks, and NUL (which voids an `id:`). */
function singleLine (value: string): string {
  return value.replace(/[\r\n\0]/g, '')
}

/**
 * One frame with an id, an event type and a payload written as one `data:` line per line. Without an
 * id there is no `id:` line at all, so the client keeps its last event id (an empty `id:` clears it).
 */
export function encodeEvent (id: string | undefined, event: string, data: string): Buffer {
  const dataLines = data.split(LINE_BREAK).join('\ndata: ')
  const idLine = id === undefined ? '' : `id: ${singleLine(id)}\n`
  return Buffer.from(`${idLine}event: ${singleLine(event)}\ndata: ${dataLines}\n\n`)
}

/** A comment line: ignored by clients, but it keeps proxies and load balancers from timing out. */
export function encodeComment (text: string): Buffer {
  return Buffer.from(`: ${text.split(LINE_BREAK).join('\n: ')}\n\n`)
}

/** Tells `EventSource` how long to wait before it reconnects. */
export function encodeRetry (ms: number): Buffer {
  return Buffer.from(`retry: ${Math.max(0, Math.floor(ms))}\n\n`)
}
