#include "portier/core/error.hpp"

namespace portier {
namespace {

class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "portier"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::ok: return "ok";
      case errc::bad_request: return "bad_request";
      case errc::header_too_large: return "header_too_large";
      case errc::uri_too_long: return "uri_too_long";
      case errc::too_many_headers: return "too_many_headers";
      case errc::request_timeout: return "request_timeout";
      case errc::not_a_proxy_request: return "not_a_proxy_request";
      case errc::bad_authority: return "bad_authority";
      case errc::client_closed: return "client_closed";
      case errc::no_route: return "no_route";
      case errc::method_not_allowed: return "method_not_allowed";
      case errc::no_backend: return "no_backend";
      case errc::port_not_allowed: return "port_not_allowed";
      case errc::destination_forbidden: return "destination_forbidden";
      case errc::name_not_resolved: return "name_not_resolved";
      case errc::connect_refused: return "connect_refused";
      case errc::host_unreachable: return "host_unreachable";
      case errc::connect_timeout: return "connect_timeout";
      case errc::upstream_timeout: return "upstream_timeout";
      case errc::upstream_bad_response: return "upstream_bad_response";
      case errc::upstream_closed: return "upstream_closed";
      case errc::parent_refused: return "parent_refused";
      case errc::parent_bad_response: return "parent_bad_response";
      case errc::no_exit: return "no_exit";
      case errc::tls_failed: return "tls_failed";
      case errc::bad_parent_config: return "bad_parent_config";
      case errc::shutting_down: return "shutting_down";
      case errc::internal: return "internal";
    }
    return "unknown";
  }
};

}  // namespace

const std::error_category& portier_category() noexcept {
  static const Category category;
  return category;
}

std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), portier_category()}; }

const char* side_name(Side s) noexcept {
  switch (s) {
    case Side::downstream: return "downstream";
    case Side::upstream: return "upstream";
    case Side::internal: return "internal";
  }
  return "internal";
}

std::string error_name(const Error& e) { return e.code.message(); }

std::string Error::describe() const {
  std::string out = error_name(*this);
  if (!context.empty()) {
    out += ": ";
    out += context;
  }
  return out;
}

int status_for(const Error& e) noexcept {
  if (e.code.category() == portier_category()) {
    switch (static_cast<errc>(e.code.value())) {
      case errc::bad_request:
      case errc::not_a_proxy_request:
      case errc::bad_authority: return 400;
      case errc::header_too_large:
      case errc::too_many_headers: return 431;
      case errc::uri_too_long: return 414;
      case errc::request_timeout: return 408;
      case errc::port_not_allowed:
      case errc::destination_forbidden: return 403;
      case errc::connect_timeout:
      case errc::upstream_timeout: return 504;
      case errc::name_not_resolved:
      case errc::connect_refused:
      case errc::host_unreachable:
      case errc::upstream_bad_response:
      case errc::upstream_closed:
      case errc::parent_refused:
      case errc::no_exit:
      case errc::tls_failed:
      case errc::parent_bad_response: return 502;
      case errc::bad_parent_config: return 500;
      case errc::shutting_down:
      case errc::no_backend: return 503;
      case errc::no_route: return 404;
      case errc::method_not_allowed: return 405;
      default: break;
    }
  }
  switch (e.side) {
    case Side::downstream: return 400;
    case Side::upstream: return 502;
    case Side::internal: return 500;
  }
  return 500;
}

}  // namespace portier
