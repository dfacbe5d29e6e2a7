// fastify with its default JSON body parser and a JSON-RPC echo route.
import Fastify from 'fastify';

const app = Fastify({ logger: false });
app.post('/', async (request) => {
  const body = request.body;
  return body.jsonrpc === undefined ? body.parameters : { jsonrpc: '2.0', result: body.params, id: body.id };
});
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
await app.listen({ port: Number(process.env.PORT ?? 0), host: '127.0.0.1' });
console.log(`READY ${app.server.address().port}`);
