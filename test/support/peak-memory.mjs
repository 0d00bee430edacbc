// Preloaded with `node --import` into a CLI process whose memory a test bounds: at exit, writes the process's peak
// resident set size (kilobytes, from getrusage) to the file named by SHOAL_TEST_PEAK_FILE.
import {writeFileSync} from 'node:fs'

const file = process.env.SHOAL_TEST_PEAK_FILE
if (file) process.on('exit', () => writeFileSync(file, String(process.resourceUsage().maxRSS)))
