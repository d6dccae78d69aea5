// The smallest app superv runs: a plain Node HTTP server, unchanged. Try:
//   npx superv start examples/hello.js --workers 2
//   curl localhost:3000/            -> served by one of the workers
//   curl localhost:3000/spin?ms=40000  -> blocks a worker's event loop: after --timeout (30 s) superv
//                                         writes a dump to ./superv-dumps, then kills and replaces it
const http = require('node:http');

function spin(ms) {
  // A named busy loop: the dump names this function, its line and its locals.
  const until = Date.now() + ms;
  let iterations = 0;
  while (Date.now() < until) iterations++;
  return iterations;
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  if (url.pathname === '/spin') {
    const n = spin(Number(url.searchParams.get('ms') ?? 1000));
    res.end(`spun ${n} times\n`);
    return;
  }
  res.end(`hello from pid ${process.pid}\n`);
});
server.listen(Number(process.env.PORT ?? 3000), () => {
  console.log(`pid ${process.pid} listening on ${server.address().port}`);
});
