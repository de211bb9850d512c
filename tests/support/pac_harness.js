// Evaluates a PAC script the way a browser does, for tests/integration/test_pac.py.
//
//   node pac_harness.js SCRIPT.pac < cases.json      cases: [[url, host], ...]
//
// Prints a JSON array with FindProxyForURL(url, host) for each case, or {"error": ...} for a case
// whose evaluation threw. The helper functions follow Mozilla's and Chromium's PAC libraries, with
// one change: dnsResolve() throws, so a script that would block a browser on DNS (dnsResolve, or
// isInNet on a name, which resolves it) fails the test instead. myIpAddress() is a fixed address.
"use strict";
const fs = require("fs");
const vm = require("vm");

const helpers = String.raw`
function dnsResolve(host) { throw new Error("dnsResolve(" + host + ") called: it blocks the browser on DNS"); }
function myIpAddress() { return "192.0.2.10"; }
function isPlainHostName(host) { return host.search("(\\.)|:") == -1; }
function dnsDomainIs(host, domain) {
  return host.length >= domain.length && host.substring(host.length - domain.length) == domain;
}
function localHostOrDomainIs(host, hostdom) { return host == hostdom || hostdom.lastIndexOf(host + ".", 0) == 0; }
function isResolvable(host) { return dnsResolve(host) != null; }
function dnsDomainLevels(host) { return host.split(".").length - 1; }
function shExpMatch(url, pattern) {
  pattern = pattern.replace(/\./g, "\\.").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp("^" + pattern + "$").test(url);
}
function convert_addr(ipchars) {
  var bytes = ipchars.split(".");
  return ((bytes[0] & 0xff) << 24) | ((bytes[1] & 0xff) << 16) | ((bytes[2] & 0xff) << 8) | (bytes[3] & 0xff);
}
function isInNet(ipaddr, pattern, maskstr) {
  if (!/^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(ipaddr)) {
    ipaddr = dnsResolve(ipaddr);  // what browsers do with a name: here it throws
    if (ipaddr == null) return false;
  }
  var host = convert_addr(ipaddr), pat = convert_addr(pattern), mask = convert_addr(maskstr);
  return (host & mask) == (pat & mask);
}
`;

const script = fs.readFileSync(process.argv[2], "utf8");
const cases = JSON.parse(fs.readFileSync(0, "utf8"));
const context = vm.createContext({});
vm.runInContext(helpers, context, {filename: "pac-helpers.js"});
vm.runInContext(script, context, {filename: "proxy.pac", timeout: 2000});
const out = cases.map(([url, host]) => {
  try {
    context.__url = url;
    context.__host = host;
    return vm.runInContext("FindProxyForURL(__url, __host)", context, {timeout: 2000});
  } catch (e) {
    return {error: String(e && e.message || e)};
  }
});
process.stdout.write(JSON.stringify(out));
