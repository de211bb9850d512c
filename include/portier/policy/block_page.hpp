#pragma once
// The page a browser sees when a request is denied. Pure text work: the template comes from the
// config, the values from the decision and the request.
#include <string>
#include <string_view>

namespace portier::policy {

struct BlockPageFields {
  std::string_view host;
  std::string_view reason;
  std::string_view category;
  std::string_view rule;
  std::string_view request_id;
};

// The built-in template. Placeholders: {{host}}, {{reason}}, {{category}}, {{rule}}, {{request_id}}.
std::string_view default_block_page() noexcept;

// Replaces each placeholder with its HTML-escaped value; unknown {{...}} are left as they are.
std::string render_block_page(std::string_view tpl, const BlockPageFields& f);

// The plain-text answer for clients that do not ask for HTML.
std::string render_block_text(const BlockPageFields& f);

// True when an Accept header value prefers HTML (a browser): it lists text/html.
bool wants_html(std::string_view accept) noexcept;

}  // namespace portier::policy
