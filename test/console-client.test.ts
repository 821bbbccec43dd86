import t from 'tap'
import { createEventsClient } from '../client/index.js'
import { randomAccountId, startApp, waitUntil } from './helpers/app.js'
import { nowS, signJwt } from './helpers/jwt.js'

// The client option the console page shows events.closing with.
const SECRET = 'a-console-client-secret-of-32-chars!'

t.test('events.closing calls onClosing, then the client reconnects with a fresh token', async t => {
  const { url } = await startApp(t, { AUTH_MODE: 'jwt', JWT_SECRET: SECRET, JWT_CLOCK_TOLERANCE_S: '0' })
  const account = randomAccountId()
  let tokens = 0
  const seen: string[] = []
  // The first token expires within 2 s: the server ends that stream with events.closing.
  const client = createEventsClient({
    url,
    users: [account],
    getToken: () => signJwt({ sub: account, exp: nowS() + (++tokens === 1 ? 2 : 600) }, { alg: 'HS256', secret: SECRET }),
    onClosing: () => seen.push(`closing after ${tokens} token`),
    onStateChange: state => seen.push(state)
  })
  t.teardown(() => client.close())
  await waitUntil('the second stream is open', () => tokens === 2 && client.state === 'open', 10_000)
  t.same(seen.slice(0, 4), ['open', 'closing after 1 token', 'connecting', 'open'])
})
