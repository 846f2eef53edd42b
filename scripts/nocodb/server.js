// Starts NocoDB inside a small express app bound to 127.0.0.1 (settings come from the environment;
// see scripts/servers.d/nocodb.sh). NocoDB's own CLI binds every address, which we do not want.
const express = require('express');
const http = require('http');
const { Noco } = require('nocodb');

async function main() {
  const port = Number(process.env.PORT || 8080);
  const app = express();
  app.disable('x-powered-by');
  const server = http.createServer(app);
  server.keepAliveTimeout = 65000;
  app.use(await Noco.init({}, server, app));
  server.listen(port, '127.0.0.1', () => console.log(`nocodb listening on http://127.0.0.1:${port}`));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
