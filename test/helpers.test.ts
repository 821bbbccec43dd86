import t from 'tap'
import { startApp, waitUntil } from './helpers/app.js'
import { subscribe } from './helpers/sse-client.js'
import { redisAnswers } from './helpers/redis.js'
import { installed } from './helpers/requirements.js'

// The helpers must fail loudly, with what they waited for, rather than hang a test run.
t.test('waiting helpers time out with a message that says what was awaited', async t => {
  await t.rejects(waitUntil('pigs fly', () => false, 50), { message: 'timed out after 50 ms waiting until pigs fly' })
  const { url } = await startApp(t)
  const client = await subscribe(t, url, 'all=true')
  await t.rejects(client.eventCount(1, 50), { message: 'timed out after 50 ms waiting for 1 events; received: "retry: 3000\\n\\n"' })
})

t.test('without Redis a Redis test file is skipped with a message, and fails when Redis is required', async t => {
  const dead = 'redis://127.0.0.1:1'
  const plans: unknown[][] = []
  const saved = { REQUIRE_REDIS: process.env.REQUIRE_REDIS, CI: process.env.CI }
  t.teardown(() => Object.assign(process.env, JSON.parse(JSON.stringify(saved))))
  delete process.env.REQUIRE_REDIS
  delete process.env.CI
  t.equal(await redisAnswers({ plan: (...args: unknown[]) => plans.push(args) }, dead), false)
  t.same(plans, [[0, `Redis does not answer at ${dead}: start redis-server to run these tests`]])
  process.env.REQUIRE_REDIS = '1'
  await t.rejects(redisAnswers({ plan: () => {} }, dead), { message: `Redis does not answer at ${dead}; CI needs it` })
})

t.test('without a program a test file is skipped with a message, and fails when it is required', async t => {
  const missing = { what: 'A browser', path: '/nonexistent/browser', flag: 'REQUIRE_TEST_PROGRAM', install: 'apt-get install browser' }
  const plans: unknown[][] = []
  const saved = { CI: process.env.CI }
  t.teardown(() => Object.assign(process.env, JSON.parse(JSON.stringify(saved))))
  delete process.env.CI
  t.equal(installed({ plan: (...args: unknown[]) => plans.push(args) }, missing), false)
  t.same(plans, [[0, 'A browser is not installed (/nonexistent/browser): apt-get install browser to run these tests']])
  t.equal(installed({ plan: () => t.fail('not skipped') }, { ...missing, path: process.execPath }), true, 'an installed one runs')
  process.env.REQUIRE_TEST_PROGRAM = '1'
  t.teardown(() => { delete process.env.REQUIRE_TEST_PROGRAM })
  t.throws(() => installed({ plan: () => {} }, missing), { message: 'A browser is not installed (/nonexistent/browser); REQUIRE_TEST_PROGRAM requires it: apt-get install browser' })
})
