// Loads the ASL files of this folder for serverless.yml (`${file(./state-machines/definitions.cjs):deploy}`).
//
// The .asl.json files are plain Amazon States Language, deployable and runnable as they are, with
// whole-string placeholders where a deployed ARN or name goes:
//   "${PrepareFunctionArn}"  → the ARN of the function `prepare` in serverless.yml
//                              ({"Fn::GetAtt": ["prepare", "Arn"]}, which serverless-step-functions
//                              turns into the function's ARN)
//   "${LockTable}"           → {"Ref": "LockTable"} (a table's name, a topic's or state machine's ARN)
// The local stack loads the same definitions through this file and resolves the same references
// against the simulated cloud.
"use strict";
const fs = require("node:fs");
const path = require("node:path");

const PLACEHOLDER = /^\$\{([A-Za-z][A-Za-z0-9]*)\}$/;

function reference(name) {
  const fn = /^(.+)FunctionArn$/.exec(name);
  if (fn) return { "Fn::GetAtt": [fn[1].charAt(0).toLowerCase() + fn[1].slice(1), "Arn"] };
  return { Ref: name };
}

function substitute(value) {
  if (typeof value === "string") {
    const m = PLACEHOLDER.exec(value);
    return m ? reference(m[1]) : value;
  }
  if (Array.isArray(value)) return value.map(substitute);
  if (value && typeof value === "object") {
    const out = {};
    for (const [k, v] of Object.entries(value)) out[k] = substitute(v);
    return out;
  }
  return value;
}

function load(name) {
  const file = path.join(__dirname, `${name}.asl.json`);
  return substitute(JSON.parse(fs.readFileSync(file, "utf8")));
}

module.exports = { load, substitute, reference };
for (const f of fs.readdirSync(__dirname)) {
  const m = /^(.+)\.asl\.json$/.exec(f);
  if (m) Object.defineProperty(module.exports, m[1], { enumerable: true, get: () => load(m[1]) });
}
