import { execFile } from 'node:child_process'
import { mkdtemp, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

/** A self-signed certificate for 127.0.0.1, made by openssl at test time. */
export async function testCertificate (): Promise<{ cert: string, key: string, pem: Buffer }> {
  const dir = await mkdtemp(join(tmpdir(), 'p2p-tls-'))
  const cert = join(dir, 'cert.pem')
  const key = join(dir, 'key.pem')
  await promisify(execFile)('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1'
  ])
  return { cert, key, pem: await readFile(cert) }
}
