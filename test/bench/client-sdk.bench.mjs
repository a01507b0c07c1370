// `npm run bench` picks up *.bench.mjs: the client SDK figures live in client-bench.mjs.
import './client-bench.mjs';
