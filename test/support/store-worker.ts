// A child process for store tests: opens the store described by SHOAL_TEST_STORE and does one job named in argv.
//   increment <key>            read-modify-guarded-write +1, retrying when another process got there first
//   hold-lease <key> <ttl>     put <key> on a fresh lease, print "ready", then wait to be killed
//   hold-lock <cluster> <ttl>  acquire the cluster lock, print its id, then wait to be killed
//   open-close <key>           take a lease, put <key> on it, start a watch, then close the store: must exit by itself
import {acquireLock} from '../../src/registry/lock.js'
import {openStore} from '../../src/store/open.js'

interface StoreSpec {etcd?: string; state?: string; prefix?: string}

const spec = JSON.parse(process.env.SHOAL_TEST_STORE ?? '{}') as StoreSpec
const [job, arg1, arg2] = process.argv.slice(2)
const store = await openStore({...spec, env: {}})

if (job === 'increment' && arg1) {
  for (let attempt = 1; ; attempt++) {
    const current = await store.get(arg1)
    const next = String(Number(current?.value ?? '0') + 1)
    const result = await store.txn([{key: arg1, target: 'mod', equals: current?.modRevision ?? 0}], [{type: 'put', key: arg1, value: next}])
    if (result.succeeded) {
      process.stdout.write(`${next} after ${attempt}\n`)
      break
    }
  }
  await store.close()
} else if (job === 'hold-lease' && arg1 && arg2) {
  const lease = await store.grantLease(Number(arg2))
  await store.txn([], [{type: 'put', key: arg1, value: 'held', lease: lease.id}])
  process.stdout.write('ready\n')
  setInterval(() => undefined, 1 << 30)
} else if (job === 'hold-lock' && arg1 && arg2) {
  const lock = await acquireLock(store, arg1, {operation: 'test-hold', ttlSeconds: Number(arg2)})
  process.stdout.write(`${lock.info.id}\n`)
  setInterval(() => undefined, 1 << 30)
} else if (job === 'open-close' && arg1) {
  const lease = await store.grantLease(5)
  await store.txn([], [{type: 'put', key: arg1, value: 'leased', lease: lease.id}])
  await store.watch(arg1, 0, () => undefined, () => undefined)
  await store.close()
  process.stdout.write('closed\n')
} else {
  process.stderr.write(`usage: store-worker increment KEY | hold-lease KEY TTL | hold-lock CLUSTER TTL | open-close KEY\n`)
  process.exit(2)
}
