'use strict';
// A third-party SOAP client for vaxgate's tests: the npm "soap" package builds its client from the
// WSDL the service serves, then calls connectivityTest and submitSingleMessage the way an EHR
// integration written in Node would. It reads its settings as JSON on stdin:
//
//   {"wsdl": "http://127.0.0.1:PORT/soap?wsdl", "username": "...", "password": "...",
//    "facilityID": "...", "messages": ["MSH|...", "MSH|..."]}
//
// and prints one JSON object with what each call returned (or the fault it raised).

const soap = require('soap');

function readStdin() {
  return new Promise((resolve, reject) => {
    const chunks = [];
    process.stdin.on('data', (c) => chunks.push(c));
    process.stdin.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    process.stdin.on('error', reject);
  });
}

// fault turns a client error into what the test checks: the HTTP status and the SOAP fault as the
// client parsed it.
function fault(err) {
  const root = err && err.root;
  const envelope = root && (root.Envelope || root['soap:Envelope']);
  const body = envelope && (envelope.Body || envelope['soap:Body']);
  return {
    status: err && err.response ? err.response.status : null,
    message: err ? String(err.message) : null,
    fault: body ? body.Fault || body['soap:Fault'] || null : null,
  };
}

async function main() {
  const cfg = JSON.parse(await readStdin());
  const out = {};

  // The WSDL binds SOAP 1.2: ask the client for SOAP 1.2 envelopes and content type.
  const client = await soap.createClientAsync(cfg.wsdl, { forceSoap12Headers: true });
  out.services = Object.keys(client.describe());
  out.endpoint = client.wsdl.services.client_Service.ports.client_Port_Soap12.location;

  const [echo] = await client.connectivityTestAsync({ echoBack: 'ping from node-soap' });
  out.connectivityTest = echo.return;

  const [sub] = await client.submitSingleMessageAsync({
    username: cfg.username,
    password: cfg.password,
    facilityID: cfg.facilityID,
    hl7Message: cfg.messages[0],
  });
  out.submitSingleMessage = sub.return;

  try {
    await client.submitSingleMessageAsync({
      username: cfg.username,
      password: 'not the password',
      facilityID: cfg.facilityID,
      hl7Message: cfg.messages[0],
    });
    out.securityFault = { status: null, fault: null, message: 'no fault' };
  } catch (err) {
    out.securityFault = fault(err);
  }

  // Credentials in a WS-Security UsernameToken header only, as MIIS senders do.
  const wss = await soap.createClientAsync(cfg.wsdl, { forceSoap12Headers: true });
  wss.setSecurity(new soap.WSSecurity(cfg.username, cfg.password, { passwordType: 'PasswordText' }));
  const [tok] = await wss.submitSingleMessageAsync({ facilityID: cfg.facilityID, hl7Message: cfg.messages[1] });
  out.submitWithUsernameToken = tok.return;

  // The same WSDL used by a client that only speaks SOAP 1.1.
  const old = await soap.createClientAsync(cfg.wsdl);
  const [echo11] = await old.connectivityTestAsync({ echoBack: 'ping over SOAP 1.1' });
  out.connectivityTestSoap11 = echo11.return;

  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((err) => {
  process.stderr.write('client failed: ' + (err && err.stack ? err.stack : String(err)) + '\n');
  if (err && err.body) {
    process.stderr.write('response body: ' + String(err.body) + '\n');
  }
  process.exit(1);
});
