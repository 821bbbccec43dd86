// `npm run test:faults`: runs the fault scenarios one after another, each as a process of its own
// (so that one's sockets and memory never weigh on the next), and fails when any of them fails.
// `npm run test:faults -- reconnect-storm redis-restart` runs only those.
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { print } from './lib/scenario.js'

const SCENARIOS = ['reconnect-storm', 'redis-restart', 'rolling-restart', 'stuck-clients', 'broken-network', 'hostile-input', 'soak']

const chosen = process.argv.slice(2)
const unknown = chosen.filter(name => !SCENARIOS.includes(name))
if (unknown.length > 0) {
  print(`unknown scenario ${unknown.join(', ')}; the scenarios are: ${SCENARIOS.join(', ')}`)
  process.exit(2)
}
const failed: string[] = []
for (const name of chosen.length > 0 ? chosen : SCENARIOS) {
  const file = fileURLToPath(new URL(`./${name}.js`, import.meta.url))
  const { status, signal } = spawnSync(process.execPath, [file], { stdio: 'inherit' })
  if (status !== 0) failed.push(`${name} (${signal ?? `exit ${status}`})`)
}
print(failed.length === 0 ? 'all fault scenarios passed' : `failed: ${failed.join(', ')}`)
process.exit(failed.length === 0 ? 0 : 1)
