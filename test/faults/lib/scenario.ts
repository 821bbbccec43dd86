// What every fault scenario shares: its sizes from the environment, its figures, its checks, and
// the clean-up of what it started, run whatever way it ends.

/** Thrown by `check`: the scenario found loss, duplication, reordering, a crash or growth. */
export class ScenarioFailure extends Error {}

/** Collects clean-ups (the helpers' `t.teardown`), run last first. */
export class Cleanup {
  #steps: Array<() => unknown> = []

  teardown (fn: () => unknown): void {
    this.#steps.push(fn)
  }

  async run (): Promise<void> {
    for (const step of this.#steps.reverse()) {
      try {
        await step()
      } catch (error) {
        process.stderr.write(`clean-up step failed: ${String(error)}\n`)
      }
    }
    this.#steps = []
  }
}

/** A positive integer from the environment, or its CI default. */
export function size (name: string, ciDefault: number): number {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return ciDefault
  const value = Number(raw)
  if (!Number.isInteger(value) || value <= 0) throw new Error(`${name} must be a positive integer, not ${JSON.stringify(raw)}`)
  return value
}

export function print (line: string): void {
  process.stdout.write(`${line}\n`)
}

/** One figure of the scenario's report, as `name: value`. */
export function figure (name: string, value: string | number): void {
  print(`  ${name}: ${value}`)
}

export function check (condition: boolean, message: string): asserts condition {
  if (!condition) throw new ScenarioFailure(message)
}

/** The value below which `p` (0 to 1) of `values` lie (nearest rank); NaN for none. */
export function percentile (values: number[], p: number): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!
}

/** The most of `times` (ms) that fall in any window of `windowMs`. */
export function peakInWindow (times: number[], windowMs: number): number {
  const sorted = [...times].sort((a, b) => a - b)
  let peak = 0
  let start = 0
  for (let end = 0; end < sorted.length; end++) {
    while (sorted[end]! - sorted[start]! >= windowMs) start++
    peak = Math.max(peak, end - start + 1)
  }
  return peak
}

export const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))

export const mib = (bytes: number): string => `${(bytes / 1048576).toFixed(1)} MiB`

/**
 * Runs a scenario under a deadline: prints its figures, `ok` or `FAIL` with what went wrong, and
 * exits 0 or 1. Everything it started is stopped in both cases.
 */
export async function runScenario (name: string, timeoutMs: number, body: (cleanup: Cleanup) => Promise<void>): Promise<void> {
  const cleanup = new Cleanup()
  const began = Date.now()
  print(`# ${name}`)
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new ScenarioFailure(`did not finish within ${timeoutMs} ms`)), timeoutMs)
  })
  let failure: unknown
  try {
    await Promise.race([body(cleanup), deadline])
  } catch (error) {
    failure = error
  }
  clearTimeout(timer)
  await cleanup.run()
  const seconds = ((Date.now() - began) / 1000).toFixed(1)
  if (failure === undefined) {
    print(`ok ${name} (${seconds} s)`)
    process.exit(0)
  }
  const message = failure instanceof ScenarioFailure ? failure.message : (failure as Error).stack ?? String(failure)
  print(`FAIL ${name} (${seconds} s): ${message}`)
  process.exit(1)
}
