/**
 * The head of a plain HTTP/1.1 GET request, read from the first bytes a connection sent. Only the
 * simplest form is taken: anything else (another method or path, a body, a header repeated or folded,
 * a byte out of place, a head longer than Node accepts) is left to Node's HTTP parser.
 */
export interface RequestHead {
  /** The request target as sent (origin form: path and query). */
  url: string
  /** Header names in lower case; every name appears once. */
  headers: Record<string, string>
  /** Names and values as sent, alternating, as Node's `IncomingMessage.rawHeaders`. */
  rawHeaders: string[]
}

const HEAD_END = Buffer.from('\r\n\r\n')
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
/** Control bytes other than tab, and a CR or LF that is not part of a line end: in no head we take. */
// eslint-disable-next-line no-control-regex -- control bytes are what it looks for
const OUT_OF_PLACE = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\r(?!\n)|(?<!\r)\n/
/** Spaces and tabs around a value (and only those: String.trim also takes Latin-1's no-break space). */
const OWS = /^[\t ]+|[\t ]+$/g
/** Headers that announce a body or another protocol: Node's parser deals with those. */
const NOT_PLAIN = new Set(['content-length', 'transfer-encoding', 'upgrade', 'expect'])

/**
 * The head of `GET <path>[?query] HTTP/1.1` when `bytes` hold exactly that head and nothing after
 * it; undefined otherwise. A head over `maxBytes` (Node's `maxHeaderSize`) is Node's to refuse (431).
 */
export function plainGetHead (bytes: Buffer, path: string, maxBytes: number): RequestHead | undefined {
  const end = bytes.indexOf(HEAD_END)
  if (end < 0 || end + HEAD_END.length !== bytes.length || bytes.length > maxBytes) return undefined
  const text = bytes.toString('latin1', 0, end)
  if (OUT_OF_PLACE.test(text)) return undefined
  const lines = text.split('\r\n')
  const requestLine = /^GET (\/\S*) HTTP\/1\.1$/.exec(lines[0]!)
  if (requestLine === null) return undefined
  const url = requestLine[1]!
  if (url !== path && !url.startsWith(`${path}?`)) return undefined

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
