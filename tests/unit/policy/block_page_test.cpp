#include <doctest/doctest.h>

#include "portier/policy/block_page.hpp"

using namespace portier::policy;

TEST_SUITE("policy.block_page") {
  TEST_CASE("placeholders are replaced with HTML-escaped values") {
    BlockPageFields f{"ads.example", "advertising <script>", "ads & tracking", "no-ads", "00ab"};
    auto html = render_block_page("<p>{{host}}|{{reason}}|{{category}}|{{rule}}|{{request_id}}</p>", f);
    CHECK(html == "<p>ads.example|advertising &lt;script&gt;|ads &amp; tracking|no-ads|00ab</p>");
  }
  TEST_CASE("unknown and unclosed placeholders stay as written") {
    BlockPageFields f{"h", "r", "", "x", "1"};
    CHECK(render_block_page("{{nope}} {{host", f) == "{{nope}} {{host");
  }
  TEST_CASE("an empty category shows a dash") {
    BlockPageFields f{"h", "r", "", "x", "1"};
    CHECK(render_block_page("{{category}}", f) == "-");
  }
  TEST_CASE("the built-in page names host, reason, category, rule and request id") {
    BlockPageFields f{"blocked.example", "reason-text", "cat-text", "rule-id", "req-id"};
    auto html = render_block_page(default_block_page(), f);
    for (const char* s : {"blocked.example", "reason-text", "cat-text", "rule-id", "req-id"})
      CHECK(html.find(s) != std::string::npos);
    CHECK(html.find("{{") == std::string::npos);
  }
  TEST_CASE("the text answer carries the same facts") {
    BlockPageFields f{"blocked.example", "reason-text", "cat-text", "rule-id", "req-id"};
    auto text = render_block_text(f);
    CHECK(text.rfind("403 Forbidden: reason-text\n", 0) == 0);
    CHECK(text.find("request id: req-id") != std::string::npos);
  }
  TEST_CASE("browsers are recognised by Accept") {
    CHECK(wants_html("text/html,application/xhtml+xml,*/*;q=0.8"));
    CHECK(wants_html("TEXT/HTML"));
    CHECK_FALSE(wants_html("*/*"));
    CHECK_FALSE(wants_html("application/json"));
    CHECK_FALSE(wants_html(""));
  }
}
