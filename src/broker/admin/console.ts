/**
 * The operator console's files (docs/operations.md): the page at `/`, its
 * script and style from the package's `console/` folder, and uPlot, the
 * chart, from its npm package. All are read once, at start, and served
 * from memory. They hold no data: the page asks the token's API for that,
 * so they are served without the token, behind the same Host check.
 */
import { readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Route } from './http.js'

/** The package's own folder, found from this file wherever the build put it (dist/, build/src/, node_modules/…). */
function packageRoot (): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 8; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string }
      if (pkg.name === 'aedes-p2p-messaging') return dir
    } catch { /* not here: one level up */ }
    dir = dirname(dir)
  }
  throw new Error('aedes-p2p-messaging: cannot find the package folder (its console and version live there)')
}

const ROOT = packageRoot()
export const packageInfo = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }

// The page loads nothing from elsewhere, runs no inline script, and may not
// be framed (clickjacking the kick button); uPlot sets its styles from script, which CSP allows.
const SECURITY_HEADERS = {
  'Content-Security-Policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'",
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-cache'
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8'
}

export async function consoleRoutes (): Promise<Route[]> {
  const require = createRequire(import.meta.url)
  const files: Array<[string, string]> = [
    ['/', join(ROOT, 'console', 'index.html')],
    ['/console/console.js', join(ROOT, 'console', 'console.js')],
    ['/console/console.css', join(ROOT, 'console', 'console.css')],
    ['/console/uPlot.js', require.resolve('uplot/dist/uPlot.iife.min.js')],
    ['/console/uPlot.css', require.resolve('uplot/dist/uPlot.min.css')]
  ]
  return Promise.all(files.map(async ([path, file]) => {
    const body = await readFile(file)
    const type = TYPES[file.slice(file.lastIndexOf('.'))] ?? 'application/octet-stream'
    return {
      method: 'GET' as const,
      path,
      open: true,
      run ({ res }) {
        res.writeHead(200, { ...SECURITY_HEADERS, 'Content-Type': type, 'Content-Length': body.length })
        res.end(body)
      }
    } satisfies Route
  }))
}
