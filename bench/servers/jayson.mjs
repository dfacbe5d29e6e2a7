// jayson's JSON-RPC 2.0 server over HTTP with an echo method.
import jayson from 'jayson';

const server = new jayson.Server({ echo: (params, callback) => callback(null, params) });
const http = server.http();
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
http.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => console.log(`READY ${http.address().port}`));
