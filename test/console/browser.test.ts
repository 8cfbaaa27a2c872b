/**
 * The operator console in a real headless Chromium (docs/operations.md):
 * it shows nothing without the token, then the right numbers after known
 * traffic, finds clients, kicks one, sends a P2P message a real client
 * receives, and reloads the config — with no error in the page's console.
 */
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import type { MqttClient } from 'mqtt'
import type { Page } from 'playwright-core'
import { loadSettings } from '../../src/broker/settings.js'
import { connectClient } from '../helpers/broker.js'
import { browserMissing, openBrowser, type TestBrowser } from '../helpers/browser.js'
import { tempFile } from '../helpers/files.js'
import { closed, collect, waitFor } from '../helpers/messages.js'
import { serverPerTest, testSettings, type TestServer } from '../helpers/server.js'

const TOKEN = 'console-token'
const skip = browserMissing()

/** The text of an element once it has some, as the page shows it. */
async function text (page: Page, selector: string): Promise<string> {
  await page.waitForSelector(selector)
  return (await page.textContent(selector) ?? '').trim()
}

/** Waits until the element's text is `want`: the page polls every second. */
async function shows (page: Page, selector: string, want: string): Promise<void> {
  await page.waitForFunction(([sel, value]) => document.querySelector(sel as string)?.textContent?.trim() === value, [selector, want], { timeout: 10_000 })
}

describe('operator console in Chromium', { skip }, () => {
  const server = serverPerTest()
  let browser: TestBrowser
  before(async () => { browser = await openBrowser() })
  after(async () => { await browser?.close() })

  async function open (s: TestServer): Promise<{ page: Page, url: string }> {
    const url = `http://127.0.0.1:${s.addresses.admin?.port ?? 0}/`
    const page = browser.page
    browser.errors.length = 0
    await page.goto('about:blank')
    await page.goto(url)
    return { page, url }
  }

  async function signIn (page: Page, token: string): Promise<void> {
    await page.fill('#token', token)
    await page.click('#login-form button[type=submit]')
  }

  it('shows no data without the token, refuses a wrong one, and opens with the right one', async () => {
    const s = await server({ admin: { port: 0, token: TOKEN } })
    await connectClient(s.addresses.mqtt?.port ?? 0, 'private-client')
    const { page } = await open(s)
    await page.waitForSelector('#login:not([hidden])')
    assert.equal(await page.isVisible('#overview'), false)
    assert.equal(await page.locator('#cards .metric').count(), 0)
    assert.ok(!(await page.content()).includes('private-client'))
    await signIn(page, 'wrong')
    await shows(page, '#login-error', 'That token was refused.')
    await signIn(page, TOKEN)
    await page.waitForSelector('#overview:not([hidden])')
    await shows(page, '[data-metric=clients] .value', '1')
    // what the browser logged is the API's 401s for the tries without the right token, nothing else
    assert.ok(browser.errors.length > 0 && browser.errors.every((e) => e.includes('401')), browser.errors.join('\n'))
  })

  it('counts known traffic, by reason, and charts it', async () => {
    const s = await server({ admin: { port: 0 } })
    const port = s.addresses.mqtt?.port ?? 0
    const alice = await connectClient(port, 'alice')
    const bob = await connectClient(port, 'bob')
    const got = collect(bob)
    const { page } = await open(s)
    await page.waitForSelector('#overview:not([hidden])')
    for (let i = 0; i < 3; i++) await alice.publishAsync('p2p/bob/chat', `m${i}`, { qos: 1 })
    await alice.publishAsync('p2p/nobody/chat', 'x', { qos: 1 })
    await alice.publishAsync('p2p/nobody/chat', 'x', { qos: 1 })
    await alice.publishAsync('p2p//chat', 'x', { qos: 1 })
    await waitFor(got, 3)
    await shows(page, '[data-metric=received] .value', '6')
    await shows(page, '[data-metric=delivered] .value', '3')
    await shows(page, '[data-metric=dropped] .value', '3')
    assert.equal(await text(page, '[data-reason=no_session] td:last-child'), '2')
    assert.equal(await text(page, '[data-reason=malformed] td:last-child'), '1')
    assert.equal(await text(page, '[data-reason=refused] td:last-child'), '0')
    await page.waitForSelector('#chart canvas')
    assert.deepEqual(browser.errors, [])
  })

  it('lists clients, filters them, shows one in detail, and kicks one', async () => {
    const s = await server({ admin: { port: 0 } })
    const port = s.addresses.mqtt?.port ?? 0
    const clients: MqttClient[] = []
    for (const id of ['bob', 'bobby', 'carol', 'sensor-1']) clients.push(await connectClient(port, id))
    const { page } = await open(s)
    await page.click('a[data-tab=clients]')
    await page.waitForSelector('tr[data-client=carol]')
    assert.equal(await page.locator('#client-rows tr').count(), 4)
    await page.fill('#client-search', 'bob')
    await page.waitForFunction(() => document.querySelectorAll('#client-rows tr').length === 2)
    assert.deepEqual(await page.locator('#client-rows tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-client'))), ['bob', 'bobby'])
    await shows(page, '#client-count', '(2 of 4)')
    await page.click('tr[data-client=bobby] button.ghost')
    await page.waitForSelector('#client-detail-fields')
    const detail = await text(page, '#client-detail-fields')
    assert.match(detail, /MQTT 3\.1\.1 over tcp/)
    assert.match(detail, /Queued messages0/)
    const gone = closed(clients[1] as MqttClient)
    page.once('dialog', (dialog) => { void dialog.accept() })
    await page.click('tr[data-client=bobby] button.danger')
    await gone
    await page.waitForFunction(() => document.querySelector('tr[data-client=bobby]') === null)
    assert.deepEqual(browser.errors, [])
  })

  it('sends a P2P message that a real client receives, and says when nobody can', async () => {
    const s = await server({ admin: { port: 0 } })
    const bob = await connectClient(s.addresses.mqtt?.port ?? 0, 'bob')
    const got = collect(bob)
    const { page } = await open(s)
    await page.click('a[data-tab=send]')
    await page.fill('#send-target', 'bob')
    await page.fill('#send-topic', 'from/console')
    await page.fill('#send-payload', 'hello bob')
    await shows(page, '#send-preview', 'p2p/bob/from/console')
    await page.click('#send-form button[type=submit]')
    await page.waitForSelector('#send-result[data-outcome=accepted]')
    await waitFor(got, 1)
    assert.deepEqual([got[0]?.topic, got[0]?.payload.toString(), got[0]?.qos], ['from/console', 'hello bob', 1])
    await page.fill('#send-target', 'nobody')
    await page.click('#send-form button[type=submit]')
    await page.waitForSelector('#send-result[data-outcome=no_session]')
    await page.fill('#send-target', 'no/such')
    await page.click('#send-form button[type=submit]')
    await page.waitForSelector('#send-result[data-outcome=error]')
    assert.match(await text(page, '#send-result'), /must not hold '\/'/)
    // the one 400 the last try asked for
    assert.ok(browser.errors.every((e) => e.includes('400')), browser.errors.join('\n'))
  })

  it('is out of reach of a page on another origin, with no token set (CSRF)', async () => {
    const s = await server({ admin: { port: 0 } })
    const bob = await connectClient(s.addresses.mqtt?.port ?? 0, 'bob')
    const got = collect(bob)
    const api = `http://127.0.0.1:${s.addresses.admin?.port ?? 0}`
    // a page elsewhere on this machine fires what a browser sends without asking first
    const evil = createServer((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html' })
      res.end(`<script>
        const body = JSON.stringify({ clientid: 'bob', topic: 'forged', payload: 'x' })
        Promise.allSettled([
          fetch('${api}/api/v1/p2p/send', { method: 'POST', mode: 'no-cors', body }),
          fetch('${api}/api/v1/p2p/send', { method: 'POST', mode: 'no-cors', headers: { 'Content-Type': 'text/plain' }, body }),
          fetch('${api}/api/v1/p2p/send', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body }),
          fetch('${api}/api/v1/clients/bob', { method: 'DELETE' })
        ]).then(() => { document.title = 'done' })
      </script>`)
    })
    await new Promise<void>((resolve) => { evil.listen(0, '127.0.0.1', resolve) })
    try {
      const page = browser.page
      await page.goto(`http://127.0.0.1:${(evil.address() as AddressInfo).port}/`)
      await page.waitForFunction(() => document.title === 'done')
      // a message reaches bob on its own connection if it was sent at all: a fence message after it proves none came
      await s.plugin.send('bob', 'fence', 'after')
      await waitFor(got, 1)
      assert.deepEqual(got.map((m) => m.topic), ['fence'])
      assert.ok(bob.connected, 'not kicked')
      assert.equal(s.plugin.counters.received, 1)
    } finally {
      evil.close()
    }
  })

  it('shows the running config and reloads it, with the outcome', async () => {
    const path = await tempFile('p2p.toml', 'mode = "suffix"\n')
    const s = await server({ admin: { port: 0 } }, async () => testSettings({ ...(await loadSettings(path)), admin: { port: 0 } }))
    const { page } = await open(s)
    await page.click('a[data-tab=config]')
    await page.waitForFunction(() => document.querySelector('#config-json')?.textContent?.includes('"mode": "prefix"') === true)
    await page.click('#reload')
    await page.waitForSelector('#reload-result.good')
    assert.equal(s.plugin.config.mode, 'suffix')
    await page.waitForFunction(() => document.querySelector('#config-json')?.textContent?.includes('"mode": "suffix"') === true)
    assert.deepEqual(browser.errors, [])
  })
})
