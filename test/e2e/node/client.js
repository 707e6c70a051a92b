'use strict';
// A second, independent xDS client for Capstan's end-to-end tests:
// @grpc/grpc-js with @grpc/grpc-js-xds dials xds:///<target>, makes <calls>
// sequential grpc.testing.TestService/UnaryCall calls (optionally with one
// header, name=value) and prints, as JSON, how many each backend answered
// (by the hostname in its reply) and how many failed, by status code.
//
// Usage: GRPC_XDS_BOOTSTRAP_CONFIG='<bootstrap json>' node client.js <target> <calls> [name=value]
const grpc = require('@grpc/grpc-js');
require('@grpc/grpc-js-xds').register();

const [target, callsArg, header] = process.argv.slice(2);
const calls = Number(callsArg);
if (!target || !Number.isInteger(calls) || calls <= 0) {
  console.error('usage: node client.js <target> <calls> [name=value]');
  process.exit(2);
}

// The messages are encoded by hand, so no .proto file is needed: the
// request is an empty SimpleRequest, and of the SimpleResponse only the
// hostname (field 6, a string) is read.
const identity = (b) => b;
const Client = grpc.makeGenericClientConstructor({
  UnaryCall: {
    path: '/grpc.testing.TestService/UnaryCall',
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
}, 'TestService');

function readVarint(buf, at) {
  let value = 0;
  let shift = 0;
  for (;;) {
    const b = buf[at.i++];
    value += (b & 0x7f) * 2 ** shift;
    if ((b & 0x80) === 0) return value;
    shift += 7;
  }
}

function hostname(buf) {
  const at = { i: 0 };
  while (at.i < buf.length) {
    const key = readVarint(buf, at);
    const field = Math.floor(key / 8);
    switch (key & 7) {
      case 0: readVarint(buf, at); break;
      case 1: at.i += 8; break;
      case 5: at.i += 4; break;
      case 2: {
        const len = readVarint(buf, at);
        if (field === 6) return buf.toString('utf8', at.i, at.i + len);
        at.i += len;
        break;
      }
      default: throw new Error(`unexpected wire type ${key & 7}`);
    }
  }
  return '';
}

function callOnce(client) {
  const md = new grpc.Metadata();
  if (header) {
    const eq = header.indexOf('=');
    md.set(header.slice(0, eq), header.slice(eq + 1));
  }
  return new Promise((resolve) => {
    client.UnaryCall(Buffer.alloc(0), md, { deadline: Date.now() + 10000 }, (err, reply) => {
      resolve(err ? `error:${grpc.status[err.code]}` : hostname(reply));
    });
  });
}

async function main() {
  const client = new Client(`xds:///${target}`, grpc.credentials.createInsecure());
  const counts = {};
  for (let i = 0; i < calls; i++) {
    const who = await callOnce(client);
    counts[who] = (counts[who] || 0) + 1;
  }
  client.close();
  process.stdout.write(`${JSON.stringify(counts)}\n`);
  process.exit(0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
