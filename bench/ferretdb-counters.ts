/**
 * Does a counter hold on this MongoDB-compatible server under concurrency? Runs rounds of 20
 * concurrent increments of one key through rate-limiter-flexible's RateLimiterMongo and through a
 * plain `$inc` upsert, and prints how many were counted. On FerretDB 1.24 (PostgreSQL backend)
 * both lose most of them (rounds counted 1-10 of 20), which is why the MongoDB store counts login
 * failures by unique inserts instead (src/store/mongo.ts).
 *
 *   MONGODB_URL=mongodb://127.0.0.1:27017/ node bin/run-ts.js bench/ferretdb-counters.ts
 */
import { MongoClient } from 'mongodb';
import { RateLimiterMongo } from 'rate-limiter-flexible';

const url = process.env.MONGODB_URL;
if (url === undefined) throw new Error('set MONGODB_URL');
const client = await new MongoClient(url, { maxPoolSize: 4 }).connect();
const dbName = 'simpleapi_probe_counters';
const db = client.db(dbName);
await db.dropDatabase().catch(() => {});
const limiter = new RateLimiterMongo({ storeClient: client, dbName, tableName: 'rl', points: 100000, duration: 900 });
await new Promise((r) => setTimeout(r, 500));
const n = 20;
let lostLimiter = 0;
let lostInc = 0;
for (let round = 0; round < 10; round++) {
  const key = `k${round}`;
  await Promise.allSettled(Array.from({ length: n }, () => limiter.consume(key, 1)));
  const counted = (await limiter.get(key))?.consumedPoints ?? 0;
  const c = db.collection<{ _id: string; n: number }>('inc');
  await Promise.all(Array.from({ length: n }, () => c.updateOne({ _id: key }, { $inc: { n: 1 } }, { upsert: true }).catch(() => {})));
  const incremented = (await c.findOne({ _id: key }))?.n ?? 0;
  lostLimiter += n - counted;
  lostInc += n - incremented;
  console.log(`round ${round}: of ${n} concurrent increments, RateLimiterMongo counted ${counted}, $inc upsert ${incremented}`);
}
console.log({ lostLimiter, lostInc, of: 10 * n });
await db.dropDatabase().catch(() => {});
await client.close();
