// A small, busy Node.js for ustat's demo (run with --expose-gc): short-lived garbage (so
// scavenges run), a full gc() every five seconds, a worker thread every three, and an HTTP
// server that sends itself a request every 200 ms.
'use strict';
const http = require('http');
const { Worker } = require('worker_threads');

const server = http.createServer((req, res) => res.end('hello'));
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  setInterval(() => http.get({ host: '127.0.0.1', port, path: '/' }, (res) => res.resume()), 200);
});

setInterval(() => {
  const garbage = [];
  for (let i = 0; i < 50_000; i++) garbage.push({ i, text: `item ${i}` });
}, 100);

setInterval(() => global.gc(), 5_000);

setInterval(() => {
  new Worker('let s = 0; for (let i = 0; i < 1e6; i++) s += i;', { eval: true });
}, 3_000);
