import { writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

let n = 0

/** A file in the OS temp dir holding `text`. */
export async function tempFile (name: string, text: string): Promise<string> {
  const path = join(tmpdir(), `p2p-test-${process.pid}-${++n}-${name}`)
  await writeFile(path, text)
  return path
}
