// Build step: bundle the node agent into one file (dist/agent/shoal-agent.mjs) that shoal places on each node of a
// cluster with `agent: true`; the node needs only Node.js >= 20 to run it. Usage: node scripts/build-agent.js
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {build} from 'esbuild'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')

await build({
  entryPoints: [join(ROOT, 'src/agent/main.ts')],
  outfile: join(ROOT, 'dist/agent/shoal-agent.mjs'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  // CommonJS dependencies inside an ES module bundle still call require() for Node's own modules.
  banner: {js: "import {createRequire as __shoalRequire} from 'node:module'; const require = __shoalRequire(import.meta.url);"},
  legalComments: 'none',
  logLevel: 'warning',
})
