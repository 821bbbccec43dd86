import { chromium, type Browser, type LaunchOptions, type Page } from 'playwright-core'
import { coverageStarted, coverPages } from './page-coverage.js'
import { installed, type Tap } from './requirements.js'

/** Debian's Chromium (`.ci/run` installs the package): playwright-core drives it, and downloads no browser of its own. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

/**
 * Whether Chromium is installed; without it the test file is skipped with a message, or fails where
 * REQUIRE_BROWSER (or CI) is set.
 */
export function browserInstalled (t: Tap): boolean {
  return installed(t, { what: 'Chromium', path: CHROMIUM, flag: 'REQUIRE_BROWSER', install: 'apt-get install chromium fonts-dejavu-core' })
}

/**
 * Headless Chromium, closed when the test ends. It accepts the tests' self-signed certificates (made
 * per run by makeCertificate), and runs without its sandbox when the tests run as root, where Chromium
 * refuses to start with it. `options` go to Playwright's launch; their `args` are added to these.
 */
export async function launchBrowser (t: Tap, options: LaunchOptions = {}): Promise<Browser> {
  /* c8 ignore start */ // depends on the machine: root or not, the nginx version, a failed start
  const args = ['--ignore-certificate-errors', ...process.getuid?.() === 0 ? ['--no-sandbox'] : [], ...options.args ?? []]
  /* c8 ignore stop */
  const browser = await chromium.launch({ ...options, executablePath: CHROMIUM, args })
  t.teardown(() => browser.close())
  return browser
}

export interface OpenPage {
  page: Page
  /** Uncaught errors of the page's scripts, so far. */
  errors: Error[]
}

/**
 * A page in a fresh browser context (no cookies, cache or connections shared with another page),
 * navigated to `url`; the context is closed when the test ends. Its pages' coverage is measured.
 */
export async function openPage (t: Tap, browser: Browser, url: string): Promise<OpenPage> {
  const context = await browser.newContext({ ignoreHTTPSErrors: true })
  t.teardown(() => context.close())
  const page = await context.newPage()
  coverPages(context)
  await coverageStarted(page)
  const errors: Error[] = []
  page.on('pageerror', error => errors.push(error))
  const response = await page.goto(url)
  /* c8 ignore start */ // depends on the machine: root or not, the nginx version, a failed start
  if (response === null || !response.ok()) throw new Error(`${url} answered ${response?.status() ?? 'nothing'}`)
  /* c8 ignore stop */
  return { page, errors }
}
