/** Query parameters whose values never reach a log line. */
const SECRET_PARAMETERS = /([?&](?:access_token|token)=)[^&#]*/gi

/** The URL as logged: tokens in the query replaced by [REDACTED]. */
export function redactUrl (url: string): string {
  return url.replace(SECRET_PARAMETERS, '$1[REDACTED]')
}

/** Header paths that pino blanks wherever headers are logged. */
export const REDACTED_PATHS = [
  'req.headers.authorization', 'req.headers.cookie',
  'headers.authorization', 'headers.cookie',
  'res.headers["set-cookie"]'
]
