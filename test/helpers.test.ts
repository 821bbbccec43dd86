import t from 'tap'
import { startApp, waitUntil } from './helpers/app.js'
import { subscribe } from './helpers/sse-client.js'

// The helpers must fail loudly, with what they waited for, rather than hang a test run.
t.test('waiting helpers time out with a message that says what was awaited', async t => {
  await t.rejects(waitUntil('pigs fly', () => false, 50), { message: 'timed out after 50 ms waiting until pigs fly' })
  const { url } = await startApp(t)
  const client = await subscribe(t, url, 'all=true')
  await t.rejects(client.eventCount(1, 50), { message: 'timed out after 50 ms waiting for 1 events; received: "retry: 3000\\n\\n"' })
})
