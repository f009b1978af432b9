// Serverless variables derived from kiln.config.yaml (`${file(./lib/config/serverless-vars.cjs):rotationEvents}`):
// one EventBridge Scheduler schedule per service, so rotation follows the configured services.
"use strict";
const fs = require("node:fs");
const path = require("node:path");
const YAML = require("yaml");

function services() {
  const file = process.env.KILN_CONFIG ? path.resolve(process.env.KILN_CONFIG) : path.join(__dirname, "../../kiln.config.yaml");
  const doc = YAML.parse(fs.readFileSync(file, "utf8")) || {};
  return Object.keys(doc.services || {});
}

module.exports = {
  /** Daily rotation check per service (the rotate function skips, with a reason, when nothing is due). */
  rotationEvents: () =>
    services().map((service) => ({
      schedule: { method: "scheduler", rate: "rate(1 day)", input: { service } },
    })),
};
