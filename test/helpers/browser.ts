/**
 * Debian's Chromium, headless, driven by playwright-core: what a real
 * operator's browser does with the console. Every message the page logs at
 * error level, and every uncaught exception, is kept for the test to check.
 */
import { existsSync } from 'node:fs'
import { chromium, type Browser, type Page } from 'playwright-core'

export const CHROMIUM = '/usr/bin/chromium'

/**
 * Why the browser tests cannot run here, or undefined when they can. CI
 * (.ci/run) installs Chromium and sets P2P_REQUIRE_BROWSER, so there a
 * missing browser fails rather than skips.
 */
export function browserMissing (): string | undefined {
  if (existsSync(CHROMIUM)) return undefined
  if (process.env.P2P_REQUIRE_BROWSER === '1') throw new Error(`${CHROMIUM} is missing: .ci/run installs it (apt-get install chromium)`)
  return `${CHROMIUM} is not installed (apt-get install chromium)`
}

export interface TestBrowser {
  page: Page
  /** console errors and uncaught exceptions, as the page reported them */
  errors: string[]
  close (): Promise<void>
}

export async function openBrowser (): Promise<TestBrowser> {
  // a fresh profile each time (Playwright's own temporary one); without the background-networking flags Chromium reaches for Google's hosts, which a closed network refuses
  const browser: Browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']
  })
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
  const errors: string[] = []
  page.on('console', (message) => { if (message.type() === 'error') errors.push(message.text()) })
  page.on('pageerror', (err) => { errors.push(err.message) })
  return {
    page,
    errors,
    async close () {
      await browser.close()
    }
  }
}
