// The json-rpc-2.0 package's server behind node:http, with an echo method.
import { createServer } from 'node:http';
import { JSONRPCServer } from 'json-rpc-2.0';

const rpc = new JSONRPCServer();
rpc.addMethod('echo', (params) => params);
const server = createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', async () => {
    const response = await rpc.receive(JSON.parse(Buffer.concat(chunks).toString('utf8')));
    if (response === null) {
      res.writeHead(204).end();
      return;
    }
    const body = JSON.stringify(response);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
});
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => console.log(`READY ${server.address().port}`));
