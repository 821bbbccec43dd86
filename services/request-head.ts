/**
 * The head of a plain HTTP/1.1 GET request, read from the first bytes a connection sent. Only the
 * simplest form is taken: anything else (another method or path, a body, a header repeated or folded,
 * a byte Node refuses, more headers or a longer head than Node accepts) is left to Node's HTTP parser.
 */
export interface RequestHead {
  /** The request target as sent (origin form: path and query). */
  url: string
  /** Header names in lower case; every name appears once. */
  headers: Record<string, string>
  /** Names and values as sent, alternating, as Node's `IncomingMessage.rawHeaders`. */
  rawHeaders: string[]
}

/** What the first bytes of a connection are, as far as the stream path is concerned. */
export type HeadReading =
  /** They may still become a request for the path: wait for more. */
  | { kind: 'incomplete' }
  /** A plain GET of the path, ending at byte `length`; what follows it is never read as a request. */
  | { kind: 'plain', head: RequestHead, length: number }
  /** A GET of the path in a form Node's parser is to read: its head ends at byte `length`. */
  | { kind: 'stream', length: number }
  /** Anything else: every byte goes to Node's HTTP server. */
  | { kind: 'other' }

export interface HeadLimits {
  /** Node's `maxHeaderSize`: a longer head is Node's to refuse (431). */
  maxBytes: number
  /** The server's `maxHeadersCount` (0: none): Node drops the headers past it, so it reads such a head. */
  maxHeaders: number
}

const HEAD_END = Buffer.from('\r\n\r\n')
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
/** A request target as Node takes it: visible ASCII only (it answers 400 to a byte over 0x7e). */
const REQUEST_LINE = /^GET ([\x21-\x7e]+) HTTP\/1\.1$/
/** Control bytes other than tab, and a CR or LF that is not part of a line end: in no head we take. */
// eslint-disable-next-line no-control-regex -- control bytes are what it looks for
const OUT_OF_PLACE = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\r(?!\n)|(?<!\r)\n/
/** Spaces and tabs around a value (and only those: String.trim also takes Latin-1's no-break space). */
const OWS = /^[\t ]+|[\t ]+$/g
/** Headers that announce a body or another protocol: Node's parser deals with those. */
const NOT_PLAIN = new Set(['content-length', 'transfer-encoding', 'upgrade', 'expect'])

const INCOMPLETE = { kind: 'incomplete' } as const
const OTHER = { kind: 'other' } as const

/**
 * Reads the first bytes of a connection: a request for `path` (`GET <path>` or `GET <path>?...`) is
 * waited for until its head is complete; anything else is told apart from its first bytes.
 */
export function readHead (bytes: Buffer, path: string, limits: HeadLimits): HeadReading {
  const start = `GET ${path}`
  const seen = bytes.toString('latin1', 0, Math.min(bytes.length, start.length + 1))
  if (!`${start} `.startsWith(seen) && !`${start}?`.startsWith(seen)) return OTHER
  const end = bytes.indexOf(HEAD_END)
  if (end < 0) return bytes.length < limits.maxBytes ? INCOMPLETE : OTHER
  const length = end + HEAD_END.length
  if (length > limits.maxBytes) return OTHER
  const head = plainHead(bytes.toString('latin1', 0, end), path, limits.maxHeaders)
  return head === undefined ? { kind: 'stream', length } : { kind: 'plain', head, length }
}

/** The head of `GET <path>[?query] HTTP/1.1` in its simplest form; undefined for any other. */
function plainHead (text: string, path: string, maxHeaders: number): RequestHead | undefined {
  if (OUT_OF_PLACE.test(text)) return undefined
  const lines = text.split('\r\n')
  const url = REQUEST_LINE.exec(lines[0]!)?.[1]
  if (url === undefined || (url !== path && !url.startsWith(`${path}?`))) return undefined
  if (maxHeaders > 0 && lines.length - 1 > maxHeaders) return undefined

  const headers: Record<string, string> = {}
  const rawHeaders: string[] = []
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!
    const colon = line.indexOf(':')
    const name = line.slice(0, colon)
    // No colon, a folded line (it starts with a space) or a bad name all fail the token test.
    if (colon < 0 || !TOKEN.test(name)) return undefined
    const value = line.slice(colon + 1).replace(OWS, '')
    const key = name.toLowerCase()
    if (NOT_PLAIN.has(key) || Object.hasOwn(headers, key) || key === '__proto__') return undefined
    headers[key] = value
    rawHeaders.push(name, value)
  }
  // HTTP/1.1 requires Host, and Node refuses a request without it.
  return 'host' in headers ? { url, headers, rawHeaders } : undefined
}
