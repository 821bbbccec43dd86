import querystring from 'fast-querystring'
import { TOKEN_PARAMETERS } from './protocol.js'

/** Query parameters whose values never reach a log line (compared in lower case). */
const SECRET_PARAMETERS = new Set<string>(TOKEN_PARAMETERS)

/**
 * Whether a query pair's name is a secret parameter's once the query parser has read it: the router's
 * parser (fast-querystring) percent-decodes names, so `access%5Ftoken` is `access_token` too.
 */
const namesSecret = (name: string): boolean =>
  Object.keys(querystring.parse(name)).some(key => SECRET_PARAMETERS.has(key.toLowerCase()))

/** The URL as logged: the values of token parameters in the query replaced by [REDACTED]. */
export function redactUrl (url: string): string {
  // Where the router's query starts: at the first `?`, or `#` (it reads a fragment as the query).
  const start = url.search(/[?#]/)
  if (start < 0) return url
  const pairs = url.slice(start + 1).split('&').map(pair => {
    const name = pair.split('=', 1)[0]!
    return namesSecret(name) ? `${name}=[REDACTED]` : pair
  })
  return `${url.slice(0, start + 1)}${pairs.join('&')}`
}

/** Header paths that pino blanks wherever headers are logged. */
export const REDACTED_PATHS = [
  'req.headers.authorization', 'req.headers.cookie',
  'headers.authorization', 'headers.cookie',
  'res.headers["set-cookie"]'
]
