import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { extname } from 'node:path'
import { fileURLToPath } from 'node:url'

// Entry points are found beside the tests: .js when the tests run compiled, .ts under tsx.
const EXTENSION = extname(fileURLToPath(import.meta.url))

/**
 * Runs one of the project's entry points (such as "server" or "scripts/publish-event") as its own
 * process, with the test's node options (loaders, coverage) and extra environment variables.
 */
export function runEntry (entry: string, args: string[] = [], env: Record<string, string> = {}) {
  const file = fileURLToPath(new URL(`../../${entry}${EXTENSION}`, import.meta.url))
  const child = spawn(process.execPath, [...process.execArgv, file, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>
  return { child, exited, output: () => ({ stdout, stderr }) }
}
