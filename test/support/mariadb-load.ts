// Reads through the MariaDB example's proxy as an application makes them: a connection of its own per read (mysql2, no
// pool, so every read is balanced anew), then which server answered and whether it holds every row written before.
import {createConnection, type ConnectionOptions} from 'mysql2/promise'

export interface TableRead {
  serverId: number
  rows: number
  sum: number
}

/** `SELECT` of the server's id and the rows of `items` (their count and the sum of their ids). */
export async function readItems(options: ConnectionOptions): Promise<TableRead> {
  const connection = await createConnection({connectTimeout: 5000, ...options})
  try {
    const [rows] = await connection.query('SELECT @@server_id AS server_id, COUNT(*) AS n, COALESCE(SUM(id), 0) AS total FROM items')
    const [row] = rows as Array<{server_id: number; n: number; total: string | number}>
    return {serverId: Number(row!.server_id), rows: Number(row!.n), sum: Number(row!.total)}
  } finally {
    await connection.end()
  }
}

/** Writes rows 1..count to a new `items` table in one statement. */
export async function writeItems(options: ConnectionOptions, count: number): Promise<void> {
  const connection = await createConnection({connectTimeout: 5000, ...options})
  try {
    await connection.query('CREATE TABLE items (id INT PRIMARY KEY, label VARCHAR(32) NOT NULL)')
    await connection.query('INSERT INTO items (id, label) VALUES ?', [Array.from({length: count}, (_, i) => [i + 1, `item-${i + 1}`])])
  } finally {
    await connection.end()
  }
}

/** An operation for the load generator: one read that fails unless it sees all `count` rows written by writeItems. */
export function readAllItems(options: () => Promise<ConnectionOptions>, count: number): () => Promise<void> {
  const sum = (count * (count + 1)) / 2
  return async () => {
    const got = await readItems(await options())
    if (got.rows !== count || got.sum !== sum) throw new Error(`server ${got.serverId} holds ${got.rows} rows (sum ${got.sum}), not the ${count} written before`)
  }
}
