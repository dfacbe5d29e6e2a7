// The practical ceiling: node:http reading the body, JSON.parse, JSON.stringify of a JSON-RPC echo.
import { createServer } from 'node:http';

const server = createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const request = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    const body = JSON.stringify(request.jsonrpc === undefined ? request.parameters : { jsonrpc: '2.0', result: request.params, id: request.id });
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
});
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => console.log(`READY ${server.address().port}`));
