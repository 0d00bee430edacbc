// Splits a byte stream into lines: chunks may end mid-line or mid-character; `\r\n` and `\n` both end a line.
import {StringDecoder} from 'node:string_decoder'

export class LineSplitter {
  private readonly decoder = new StringDecoder('utf8')
  private pending = ''

  constructor(private readonly onLine: (line: string) => void) {}

  push(chunk: Buffer | string): void {
    this.pending += typeof chunk === 'string' ? chunk : this.decoder.write(chunk)
    let newline = this.pending.indexOf('\n')
    while (newline >= 0) {
      this.onLine(stripCr(this.pending.slice(0, newline)))
      this.pending = this.pending.slice(newline + 1)
      newline = this.pending.indexOf('\n')
    }
  }

  /** Deliver what is left (a last line without a newline). */
  end(): void {
    this.pending += this.decoder.end()
    if (this.pending !== '') this.onLine(stripCr(this.pending))
    this.pending = ''
  }
}

function stripCr(line: string): string {
  return line.endsWith('\r') ? line.slice(0, -1) : line
}
