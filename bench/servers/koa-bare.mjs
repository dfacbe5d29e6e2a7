// Koa as usually assembled: koa-bodyparser and a JSON-RPC echo middleware.
import Koa from 'koa';
import bodyParser from 'koa-bodyparser';

const app = new Koa();
app.use(bodyParser());
app.use((ctx) => {
  const request = ctx.request.body;
  ctx.body = request.jsonrpc === undefined ? request.parameters : { jsonrpc: '2.0', result: request.params, id: request.id };
});
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
const server = app.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => console.log(`READY ${server.address().port}`));
