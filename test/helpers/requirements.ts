import { existsSync } from 'node:fs'

interface Plan {
  plan (count: number, reason: string): void
}

/** What the helpers of programs a test needs take of a tap test: a teardown, and a plan to skip by. */
export interface Tap extends Plan {
  teardown (fn: () => unknown): void
}

export interface Requirement {
  /** What is needed, for the messages: "Chromium". */
  what: string
  /** The executable that must exist. */
  path: string
  /** The environment variable that makes its absence a failure (`.ci/run` sets it). */
  flag: string
  /** How to install it: "apt-get install chromium". */
  install: string
}

/**
 * Whether a program a test file needs is installed. When it is not, the file is skipped with a message
 * saying so on a laptop, and fails where it is required (`flag` or `CI` set), as in CI, which installs it.
 */
export function installed (t: Plan, { what, path, flag, install }: Requirement): boolean {
  if (existsSync(path)) return true
  if (process.env[flag] !== undefined || process.env.CI !== undefined) throw new Error(`${what} is not installed (${path}); ${flag} requires it: ${install}`)
  t.plan(0, `${what} is not installed (${path}): ${install} to run these tests`)
  return false
}
