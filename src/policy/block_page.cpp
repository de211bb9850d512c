#include "portier/policy/block_page.hpp"

#include <cctype>

namespace portier::policy {
namespace {

void append_html(std::string& out, std::string_view s) {
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
}

}  // namespace

std::string_view default_block_page() noexcept {
  return R"(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Blocked: {{host}}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 0; background: #f4f4f5; color: #18181b; }
main { max-width: 36rem; margin: 12vh auto; background: #fff; padding: 2rem 2.5rem; border-radius: .5rem;
       box-shadow: 0 1px 3px rgba(0,0,0,.12); }
h1 { font-size: 1.4rem; margin: 0 0 1rem; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .4rem 1rem; margin: 1.5rem 0 0; }
dt { color: #71717a; } dd { margin: 0; word-break: break-all; }
p.note { color: #71717a; font-size: .9rem; margin-top: 1.5rem; }
</style>
</head>
<body>
<main>
<h1>This site is blocked by your network's proxy</h1>
<p>{{reason}}</p>
<dl>
<dt>Site</dt><dd>{{host}}</dd>
<dt>Category</dt><dd>{{category}}</dd>
<dt>Rule</dt><dd>{{rule}}</dd>
<dt>Request id</dt><dd>{{request_id}}</dd>
</dl>
<p class="note">If you need this site for your work, send the request id to your network administrator.</p>
</main>
</body>
</html>
)";
}

std::string render_block_page(std::string_view tpl, const BlockPageFields& f) {
  std::string out;
  out.reserve(tpl.size() + 256);
  std::size_t i = 0;
  while (i < tpl.size()) {
    std::size_t open = tpl.find("{{", i);
    if (open == std::string_view::npos) {
      out.append(tpl.substr(i));
      break;
    }
    out.append(tpl.substr(i, open - i));
    std::size_t close = tpl.find("}}", open + 2);
    if (close == std::string_view::npos) {
      out.append(tpl.substr(open));
      break;
    }
    std::string_view name = tpl.substr(open + 2, close - open - 2);
    if (name == "host") append_html(out, f.host);
    else if (name == "reason") append_html(out, f.reason);
    else if (name == "category") append_html(out, f.category.empty() ? std::string_view("-") : f.category);
    else if (name == "rule") append_html(out, f.rule);
    else if (name == "request_id") append_html(out, f.request_id);
    else out.append(tpl.substr(open, close + 2 - open));
    i = close + 2;
  }
  return out;
}

std::string render_block_text(const BlockPageFields& f) {
  std::string out = "403 Forbidden: ";
  out += f.reason;
  out += "\nhost: ";
  out += f.host;
  if (!f.category.empty()) {
    out += "\ncategory: ";
    out += f.category;
  }
  out += "\nrule: ";
  out += f.rule;
  out += "\nrequest id: ";
  out += f.request_id;
  out += '\n';
  return out;
}

bool wants_html(std::string_view accept) noexcept {
  // Case-insensitive search for "text/html"; browsers always list it for page loads.
  static constexpr std::string_view kHtml = "text/html";
  if (accept.size() < kHtml.size()) return false;
  for (std::size_t i = 0; i + kHtml.size() <= accept.size(); ++i) {
    bool eq = true;
    for (std::size_t j = 0; j < kHtml.size() && eq; ++j)
      eq = std::tolower(static_cast<unsigned char>(accept[i + j])) == kHtml[j];
    if (eq) return true;
  }
  return false;
}

}  // namespace portier::policy
