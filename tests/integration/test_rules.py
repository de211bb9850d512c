"""Rules and lists: domain and regex lists, host/url/method/port rules with unless, allow-list mode,
time windows, group rules, the block page (built-in and a template) and what the access log says.

Denied requests are decided before any DNS lookup, so deny tests use names under .test that do not
resolve; allowed requests go to origins on 127.0.0.1 (the test config's ssrf.allow opens loopback).
"""
import datetime
import os
import re
import time
import unittest

from tests.integration.helpers import ProxyTestCase
from tests.support.policy_files import (basic_token, hash_password, request_bytes, write_htpasswd,
                                        write_text)

ADS = """# domain list for the tests
ads.blocked.test
0.0.0.0 tracker.blocked.test
127.0.0.1 pixel.blocked.test banner.blocked.test
||doubleclick.blocked.test^

! an Adblock comment
.dot.blocked.test
"""
ADS_LINES = {"ads.blocked.test": 2, "tracker.blocked.test": 3, "pixel.blocked.test": 4,
             "banner.blocked.test": 4, "doubleclick.blocked.test": 5, "dot.blocked.test": 8}

TRACKERS = """# regex list for the tests
/banner[0-9]+
[?&]utm_source=
(^|\\.)metrics\\.blocked\\.test(:[0-9]+)?(/|$)
"""
TRACKER_LINES = {"banner": 2, "utm": 3, "metrics": 4}

REQ_ID_RE = re.compile(r"\b[0-9a-f]{16}\b")


class RulesBase(ProxyTestCase):
    def get(self, url, headers=(), method="GET", conn=None):
        c = conn or self.connect()
        c.send(request_bytes(method, url, list(headers)))
        return c.read_response(method)

    def record_for(self, path=None, target=None, method=None):
        def pred(r):
            return ((path is None or r["path"] == path) and (target is None or r["target"] == target)
                    and (method is None or r["method"] == method))
        return self.wait_record(pred, what="access log record for %s %s" % (target, path))


class Lists(RulesBase):
    def setUp(self):
        self.origin = self.start_origin()
        self.files = self.make_tmpdir()
        self.ads = write_text(os.path.join(self.files, "ads.txt"), ADS)
        self.trackers = write_text(os.path.join(self.files, "trackers.txt"), TRACKERS)
        self.start_portier({
            "lists": {"ads": {"file": self.ads, "match": "domain"},
                      "trackers": {"file": self.trackers, "match": "regex"}},
            "rules": [
                {"id": "no-ads", "when": {"list": "ads"}, "action": "deny",
                 "reason": "advertising is blocked here", "category": "ads"},
                {"id": "no-trackers", "when": {"list": "trackers"}, "action": "deny",
                 "reason": "tracking is blocked here", "category": "tracking"},
            ],
            "timeouts": {"connect_ms": 3000},
        })

    def test_block_page_html(self):
        c = self.connect()
        r = self.get("http://sub.ads.blocked.test/some/page", conn=c,
                     headers=["Accept: text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"])
        self.assertStatus(r, 403)
        self.assertTrue(r.header("Content-Type").startswith("text/html"), r.headers)
        body = r.body.decode("utf-8")
        self.assertIn("<html", body.lower())
        self.assertIn("sub.ads.blocked.test", body)
        self.assertIn("advertising is blocked here", body)
        self.assertIn(">ads<", body)
        self.assertIn("no-ads", body)
        ids = REQ_ID_RE.findall(body)
        self.assertTrue(ids, "no request id on the block page:\n" + body)
        rec = self.record_for(path="/some/page")
        self.assertIn(rec["req"], ids, "the block page's request id must be the access log's req")
        self.assertEqual(rec["decision"], "deny")
        self.assertEqual(rec["status"], 403)
        self.assertEqual(rec["rule"], "no-ads")
        self.assertEqual(rec["target"], "sub.ads.blocked.test:80")
        self.assertEqual(rec["upstream"], "")
        self.assertTrue(rec["entry"].endswith("ads.txt:2"), rec)
        # the connection stays usable after a denial of a body-less request
        r2 = self.get(self.origin.url + "/echo/after-block", conn=c)
        self.assertStatus(r2, 200)

    def test_block_text_without_accept_html(self):
        for accept in (None, "application/json", "*/*"):
            with self.subTest(accept=accept):
                r = self.get("http://ads.blocked.test/x", headers=["Accept: " + accept] if accept else [])
                self.assertStatus(r, 403)
                self.assertTrue(r.header("Content-Type").startswith("text/plain"), r.headers)
                body = r.body.decode("utf-8")
                self.assertNotIn("<html", body.lower())
                self.assertIn("host: ads.blocked.test", body)
                self.assertIn("advertising is blocked here", body)
                self.assertIn("category: ads", body)
                self.assertIn("rule: no-ads", body)
                m = re.search(r"request id: ([0-9a-f]{16})", body)
                self.assertTrue(m, body)
        recs = self.portier.access_log_records(3, predicate=lambda x: x["target"] == "ads.blocked.test:80")
        self.assertEqual(len(recs), 3)

    def test_curl_sees_403(self):
        r = self.curl("http://www.ads.blocked.test/")
        self.assertStatus(r, 403)
        self.assertIn(b"advertising is blocked here", r.body)

    def test_domain_list_line_formats(self):
        for host, line in sorted(ADS_LINES.items()):
            for name in (host, "deep.sub." + host, host.upper()):
                with self.subTest(host=name):
                    path = "/fmt/%s" % name
                    r = self.get("http://%s%s" % (name, path))
                    self.assertStatus(r, 403)
                    rec = self.record_for(path=path)
                    self.assertEqual(rec["rule"], "no-ads")
                    self.assertTrue(rec["entry"].endswith("ads.txt:%d" % line),
                                    "%s: entry %r, expected ...ads.txt:%d" % (name, rec["entry"], line))
                    self.assertTrue(os.path.basename(rec["entry"].rsplit(":", 1)[0]) == "ads.txt",
                                    rec["entry"])

    def test_domain_list_is_not_a_suffix_match(self):
        # "ads.blocked.test" must not match "badads.blocked.test" (label boundary)
        for name in ("badads.blocked.test", "ads.blocked.test.evil", "blocked.test"):
            with self.subTest(host=name):
                path = "/notlisted/" + name
                r = self.get("http://%s%s" % (name, path))
                self.assertNotEqual(r.status, 403, "%s is not on the list: %r" % (name, r))
                rec = self.record_for(path=path)
                self.assertNotEqual(rec["rule"], "no-ads", rec)
                self.assertNotEqual(rec["decision"], "deny", rec)

    def test_connect_to_listed_host_403_before_any_tunnel(self):
        for host, rule, line_key in (("ads.blocked.test", "no-ads", None),
                                      ("x.doubleclick.blocked.test", "no-ads", None),
                                      ("metrics.blocked.test", "no-trackers", "metrics")):
            with self.subTest(host=host):
                c, r = self.tunnel(host, 443)
                self.assertStatus(r, 403)
                self.assertFalse(r.raw_head.startswith(b"HTTP/1.1 200"))
                self.assertIn(b"rule: " + rule.encode(), r.body)
                self.assertClosed(c, 3.0, "a denied CONNECT ends the connection")
                rec = self.record_for(target="%s:443" % host, method="CONNECT")
                self.assertEqual(rec["rule"], rule)
                self.assertEqual(rec["decision"], "deny")
                self.assertEqual(rec["upstream"], "")
                if line_key:
                    self.assertTrue(rec["entry"].endswith("trackers.txt:%d" % TRACKER_LINES[line_key]),
                                    rec)

    def test_regex_list_matches_urls(self):
        r = self.get(self.origin.url + "/img/banner12.gif")
        self.assertStatus(r, 403)
        rec = self.record_for(path="/img/banner12.gif")
        self.assertEqual(rec["rule"], "no-trackers")
        self.assertTrue(rec["entry"].endswith("trackers.txt:%d" % TRACKER_LINES["banner"]), rec)
        r = self.get(self.origin.url + "/img/BANNER7.gif")
        self.assertStatus(r, 403, "regex lists are case-insensitive")
        r = self.get(self.origin.url + "/img/page?x=1&utm_source=mail")
        self.assertStatus(r, 403)
        rec = self.record_for(path="/img/page")
        self.assertTrue(rec["entry"].endswith("trackers.txt:%d" % TRACKER_LINES["utm"]), rec)
        self.assertEqual(self.origin.requests_for("/img/"), [])
        for ok in ("/img/logo.gif", "/img/banner.gif", "/img/other?utm=1&x_utm_source=2"):
            with self.subTest(path=ok):
                r = self.get(self.origin.url + ok)
                self.assertStatus(r, 200)
                self.assertEqual(r.json()["target"], ok)
                rec = self.record_for(path=ok.split("?")[0])
                self.assertEqual(rec["rule"], "")
                self.assertEqual(rec["entry"], "")


class Rules(RulesBase):
    def setUp(self):
        self.origin = self.start_origin()
        self.other = self.start_origin()
        self.start_portier({
            "rules": [
                {"id": "no-delete", "when": {"method": "delete"}, "action": "deny",
                 "reason": "no deleting through the proxy"},
                {"id": "evil-host", "when": {"host": "(^|\\.)evil\\.test$"}, "action": "deny",
                 "reason": "malware site", "category": "malware"},
                {"id": "private-url", "when": {"url": "^http://[^/]+/private/"}, "action": "deny"},
                {"id": "main-port-only", "when": {"host": "^127\\.0\\.0\\.1$"},
                 "unless": {"port": [self.origin.port, "1-2"]}, "action": "deny",
                 "reason": "only the main origin"},
                {"id": "allow-rest", "when": {}, "action": "allow"},
                {"id": "never-reached", "when": {}, "action": "deny"},
            ],
        })

    def test_method_rule(self):
        r = self.get(self.origin.url + "/echo/del", method="DELETE")
        self.assertStatus(r, 403)
        self.assertIn(b"no deleting through the proxy", r.body)
        self.assertEqual(self.record_for(path="/echo/del")["rule"], "no-delete")
        self.assertEqual(self.origin.requests_for("/echo/del"), [])
        r = self.get(self.origin.url + "/echo/get")
        self.assertStatus(r, 200)
        self.assertEqual(self.record_for(path="/echo/get")["rule"], "allow-rest")
        r = self.get(self.origin.url + "/echo/put", method="PUT")
        self.assertStatus(r, 200)

    def test_host_rule(self):
        for host in ("evil.test", "www.evil.test", "WWW.EVIL.TEST"):
            with self.subTest(host=host):
                r = self.get("http://%s/h" % host)
                self.assertStatus(r, 403)
                self.assertIn(b"malware site", r.body)
                self.assertIn(b"category: malware", r.body)
                c, r = self.tunnel(host, 443)
                self.assertStatus(r, 403)
        recs = self.portier.access_log_records(6, predicate=lambda x: x["rule"] == "evil-host")
        self.assertEqual(len(recs), 6, recs)

    def test_url_rule(self):
        r = self.get(self.origin.url + "/private/data")
        self.assertStatus(r, 403)
        self.assertIn(b"denied by rule private-url", r.body, "the default reason names the rule")
        self.assertEqual(self.record_for(path="/private/data")["rule"], "private-url")
        r = self.get(self.origin.url + "/public/private/data")
        self.assertStatus(r, 200, "the pattern is anchored at the URL start")
        self.assertEqual(self.origin.requests_for("/private"), [])

    def test_port_rule_with_unless(self):
        r = self.get(self.other.url + "/echo/other-port")
        self.assertStatus(r, 403)
        self.assertIn(b"only the main origin", r.body)
        self.assertEqual(self.record_for(path="/echo/other-port")["rule"], "main-port-only")
        self.assertNothingReached(self.other)
        r = self.get(self.origin.url + "/echo/main-port")
        self.assertStatus(r, 200)
        self.assertEqual(self.record_for(path="/echo/main-port")["rule"], "allow-rest")
        # the same origin reached as "localhost" is not covered by the host pattern
        r = self.get("http://localhost:%d/echo/by-name" % self.other.port)
        self.assertStatus(r, 200)
        self.assertEqual(self.record_for(path="/echo/by-name")["rule"], "allow-rest")


class AllowList(RulesBase):
    def test_default_deny_with_allow_rule(self):
        origin = self.start_origin()
        self.start_portier({
            "forward": {"connect_ports": ["1-65535"]},
            "rules": [{"id": "loopback-ok", "when": {"host": "^127\\.0\\.0\\.1$"}, "action": "allow"}],
            "default_action": "deny",
        })
        r = self.get(origin.url + "/echo/allowed")
        self.assertStatus(r, 200)
        self.assertEqual(self.record_for(path="/echo/allowed")["rule"], "loopback-ok")
        r = self.get("http://localhost:%d/echo/by-name" % origin.port)
        self.assertStatus(r, 403)
        self.assertIn(b"rule: default", r.body)
        rec = self.record_for(path="/echo/by-name")
        self.assertEqual(rec["rule"], "default")
        self.assertEqual(rec["decision"], "deny")
        r = self.get("http://anything.example/")
        self.assertStatus(r, 403)
        c, r = self.tunnel("localhost", origin.port)
        self.assertStatus(r, 403)
        self.assertEqual(len(origin.requests), 1)
        self.assertEqual(origin.accepted, 1)


TIME_RULES = [
    {"id": "office-hours", "when": {"url": "/day", "time": {
        "days": ["mon", "tue", "wed", "thu", "fri"], "from": "09:00", "to": "17:00"}},
     "action": "deny", "reason": "not during office hours"},
    {"id": "friday-night", "when": {"url": "/night", "time": {
        "days": ["fri"], "from": "22:00", "to": "06:00"}},
     "action": "deny"},
    {"id": "lunch", "when": {"url": "/lunch", "time": [
        {"from": "12:00", "to": "13:00"}, {"days": ["sun"]}]},
     "action": "deny"},
]


class TimeWindows(RulesBase):
    CASES = {
        # override: {path: expected status}
        "sat 12:00": {"/day": 200, "/night": 200, "/lunch": 403},
        "wed 12:00": {"/day": 403, "/night": 200, "/lunch": 403},
        "wed 09:00": {"/day": 403, "/lunch": 200},
        "wed 08:59": {"/day": 200},
        "wed 17:00": {"/day": 200, "/lunch": 200},
        "fri 16:59": {"/day": 403, "/night": 200},
        "fri 23:00": {"/night": 403},
        "sat 03:00": {"/night": 403, "/lunch": 200},
        "sat 06:00": {"/night": 200},
        "fri 03:00": {"/night": 200},
        "sun 03:00": {"/night": 200, "/lunch": 403},
        "mon 12:59": {"/lunch": 403, "/day": 403},
    }

    def test_time_override_windows(self):
        origin = self.start_origin()
        for override, expect in self.CASES.items():
            p = self.start_portier({"rules": TIME_RULES,
                                    "time": {"zone": "UTC", "override": override}})
            for path, status in expect.items():
                with self.subTest(override=override, path=path):
                    r = self.get(origin.url + path)
                    self.assertStatus(r, status, "at %s" % override)
            p.close()

    def test_utc_clock_today(self):
        origin = self.start_origin()
        days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        for attempt in range(3):
            today = datetime.datetime.now(datetime.timezone.utc).weekday()
            others = [d for i, d in enumerate(days) if i != today]
            p = self.start_portier({"time": {"zone": "UTC"}, "rules": [
                {"id": "today", "when": {"url": "/today", "time": {"days": [days[today]]}}, "action": "deny"},
                {"id": "not-today", "when": {"url": "/other-days", "time": {"days": others}},
                 "action": "deny"},
            ]})
            r1 = self.get(origin.url + "/today")
            r2 = self.get(origin.url + "/other-days")
            p.close()
            if datetime.datetime.now(datetime.timezone.utc).weekday() != today:
                continue  # midnight passed during the test: once more
            self.assertStatus(r1, 403, "today (%s, UTC) is in the window" % days[today])
            self.assertStatus(r2, 200, "today (%s, UTC) is not in the other days" % days[today])
            return
        self.fail("the UTC day kept changing")


class Groups(RulesBase):
    def setUp(self):
        self.origin = self.start_origin()
        files = self.make_tmpdir()
        self.pw = {"alice": "alice-pw-1", "bob": "bob-pw-2"}
        users = write_htpasswd(os.path.join(files, "users"), {
            u: hash_password(p, "sha512") for u, p in self.pw.items()})
        self.start_portier({
            "listeners": [{"name": "office", "listen": ["127.0.0.1:0"], "mode": "forward",
                           "auth": "required"}],
            "auth": {"users_file": users, "groups": {"interns": ["alice"], "staff": ["alice", "bob"]}},
            "forward": {"connect_ports": ["1-65535"]},
            "rules": [
                {"id": "interns-no-games", "when": {"group": "interns", "url": "/games"},
                 "action": "deny", "reason": "interns may not play", "category": "games"},
                {"id": "bob-no-admin", "when": {"user": "bob", "url": "/admin"}, "action": "deny"},
                {"id": "interns-no-tunnels", "when": {"group": ["interns"], "method": "CONNECT"},
                 "action": "deny"},
            ],
        })

    def auth(self, user):
        return ["Proxy-Authorization: Basic " + basic_token(user, self.pw[user])]

    def test_group_rule(self):
        r = self.get(self.origin.url + "/games/1", headers=self.auth("alice"))
        self.assertStatus(r, 403)
        self.assertIn(b"interns may not play", r.body)
        rec = self.record_for(path="/games/1")
        self.assertEqual(rec["rule"], "interns-no-games")
        self.assertEqual(rec["user"], "alice")
        r = self.get(self.origin.url + "/games/2", headers=self.auth("bob"))
        self.assertStatus(r, 200)
        self.assertEqual(self.record_for(path="/games/2")["user"], "bob")

    def test_user_rule(self):
        self.assertStatus(self.get(self.origin.url + "/admin", headers=self.auth("bob")), 403)
        self.assertStatus(self.get(self.origin.url + "/admin", headers=self.auth("alice")), 200)

    def test_group_rule_for_connect(self):
        srv = self.start_tcp("echo")
        authority = "127.0.0.1:%d" % srv.port
        for user, status in (("alice", 403), ("bob", 200)):
            with self.subTest(user=user):
                conn = self.connect()
                conn.send("CONNECT %s HTTP/1.1\r\nHost: %s\r\n%s\r\n\r\n" % (
                    authority, authority, self.auth(user)[0]))
                r = conn.read_response("CONNECT")
                self.assertStatus(r, status)
        deadline = time.monotonic() + 3  # the server's accept thread counts a moment later
        while srv.accepted < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertEqual(srv.accepted, 1, "only bob's tunnel dials the upstream")


class BlockPageTemplate(RulesBase):
    TEMPLATE = ("<!DOCTYPE html><title>Custom: {{host}}</title>\n"
                "<p id=reason>{{reason}}</p><p id=category>{{category}}</p>\n"
                "<p id=rule>{{rule}}</p><p id=req>{{request_id}}</p>\n"
                "<p id=unknown>{{nope}}</p><p id=again>{{host}}</p>{{unclosed\n")

    def setUp(self):
        files = self.make_tmpdir()
        tpl = write_text(os.path.join(files, "block.html"), self.TEMPLATE)
        self.start_portier({
            "block_page": {"template": tpl},
            "rules": [
                {"id": "escape-me", "when": {"host": "^esc\\.blocked\\.test$"}, "action": "deny",
                 "reason": "ads & <script>alert(1)</script> \"quoted\"", "category": "a<b>"},
                {"id": "no-category", "when": {"host": "^plain\\.blocked\\.test$"}, "action": "deny",
                 "reason": "plain reason"},
            ],
        })

    def test_placeholders_replaced_and_escaped(self):
        r = self.get("http://esc.blocked.test/page", headers=["Accept: text/html"])
        self.assertStatus(r, 403)
        body = r.body.decode("utf-8")
        self.assertTrue(body.startswith("<!DOCTYPE html><title>Custom: esc.blocked.test</title>"), body)
        self.assertIn("<p id=reason>ads &amp; &lt;script&gt;alert(1)&lt;/script&gt; &quot;quoted&quot;</p>",
                      body)
        self.assertNotIn("<script>", body)
        self.assertIn("<p id=category>a&lt;b&gt;</p>", body)
        self.assertIn("<p id=rule>escape-me</p>", body)
        self.assertIn("<p id=unknown>{{nope}}</p>", body, "unknown placeholders stay as they are")
        self.assertIn("<p id=again>esc.blocked.test</p>", body)
        self.assertTrue(body.endswith("{{unclosed\n"), body[-40:])
        m = re.search(r"<p id=req>([0-9a-f]{16})</p>", body)
        self.assertTrue(m, body)
        rec = self.record_for(path="/page")
        self.assertEqual(m.group(1), rec["req"])

    def test_empty_category_and_text_answer(self):
        r = self.get("http://plain.blocked.test/x", headers=["Accept: TEXT/HTML"])
        self.assertStatus(r, 403)
        self.assertIn("<p id=category>-</p>", r.body.decode())
        r = self.get("http://plain.blocked.test/y")
        self.assertStatus(r, 403)
        self.assertTrue(r.header("Content-Type").startswith("text/plain"))
        self.assertNotIn(b"Custom", r.body, "non-browsers get the text answer, not the template")
        self.assertNotIn(b"category:", r.body)

    def test_head_request_block_page_has_no_body(self):
        c = self.connect()
        r = self.get("http://plain.blocked.test/h", headers=["Accept: text/html"], method="HEAD", conn=c)
        self.assertStatus(r, 403)
        self.assertEqual(r.body, b"")
        # nothing of a body was sent: the next answer on the connection parses cleanly
        r = self.get("http://plain.blocked.test/h2", conn=c)
        self.assertStatus(r, 403)
        self.assertIn(b"host: plain.blocked.test", r.body)


if __name__ == "__main__":
    unittest.main()
