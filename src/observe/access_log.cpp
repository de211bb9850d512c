#include "portier/observe/access_log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

namespace portier::observe {
namespace {

void append_escaped(std::string& out, const std::string& s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c >= 0x7f) {  // keep the log ASCII: bytes from the wire are not trusted UTF-8
          static constexpr char kHex[] = "0123456789abcdef";
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 15];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

void field(std::string& out, const char* key, const std::string& v) {
  out += ",\"";
  out += key;
  out += "\":";
  append_escaped(out, v);
}

void field(std::string& out, const char* key, std::int64_t v) {
  out += ",\"";
  out += key;
  out += "\":";
  out += std::to_string(v);
}

}  // namespace

std::string format_timestamp(std::chrono::system_clock::time_point t) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
  return buf;
}

std::string format_request_id(std::uint64_t id) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(id));
  return buf;
}

void AccessRecord::reset() noexcept {
  start = {};
  request_id = 0;
  connection = 0;
  status = 0;
  bytes_up = 0;
  bytes_down = 0;
  duration_ms = 0;
  connect_ms = -1;
  connect_us = -1;
  for (std::string* f : {&listener, &client, &method, &target, &path, &decision, &upstream, &error, &rule, &entry,
                         &user, &groups, &sni, &region, &exit, &chain, &session, &route, &backend})
    f->clear();
}

std::string to_json(const AccessRecord& r) {
  std::string out;
  out.reserve(320);
  out += "{\"ts\":\"";
  out += format_timestamp(r.start);
  out += '"';
  field(out, "req", format_request_id(r.request_id));
  field(out, "conn", static_cast<std::int64_t>(r.connection));
  field(out, "listener", r.listener);
  field(out, "client", r.client);
  field(out, "method", r.method);
  field(out, "target", r.target);
  field(out, "path", r.path);
  field(out, "status", r.status);
  field(out, "decision", r.decision);
  field(out, "bytes_up", static_cast<std::int64_t>(r.bytes_up));
  field(out, "bytes_down", static_cast<std::int64_t>(r.bytes_down));
  field(out, "ms", r.duration_ms);
  field(out, "upstream", r.upstream);
  field(out, "error", r.error);
  field(out, "rule", r.rule);
  field(out, "entry", r.entry);
  field(out, "user", r.user);
  field(out, "groups", r.groups);
  field(out, "sni", r.sni);
  field(out, "region", r.region);
  field(out, "exit", r.exit);
  field(out, "chain", r.chain);
  field(out, "session", r.session);
  field(out, "route", r.route);
  field(out, "backend", r.backend);
  field(out, "connect_ms", r.connect_ms);
  out += '}';
  return out;
}

AccessLog AccessLog::open(const std::string& path, std::string* error) {
  AccessLog log;
  if (path.empty() || path == "off") return log;
  if (path == "-") {
    log.fd_ = STDOUT_FILENO;
    return log;
  }
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) {
    if (error) *error = "cannot open access log " + path + ": " + std::strerror(errno);
    return log;
  }
  log.fd_ = fd;
  log.owned_ = true;
  log.path_ = path;
  return log;
}

bool AccessLog::reopen(std::string* error) {
  if (!owned_) return true;  // stdout or off: nothing to reopen
  int fd = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) {
    if (error) *error = "cannot reopen access log " + path_ + ": " + std::strerror(errno);
    return false;  // keep writing to the old file rather than losing lines
  }
  // dup3 swaps the file behind fd_ atomically: a worker's write(2) goes wholly to the old file or
  // wholly to the new one, and no worker ever sees a closed descriptor.
  const int rc = ::dup3(fd, fd_, O_CLOEXEC);
  const int saved = errno;
  ::close(fd);
  if (rc < 0) {
    if (error) *error = "cannot reopen access log " + path_ + ": " + std::strerror(saved);
    return false;
  }
  return true;
}

AccessLog::AccessLog(AccessLog&& o) noexcept : fd_(o.fd_), owned_(o.owned_), path_(std::move(o.path_)) {
  o.fd_ = -1;
  o.owned_ = false;
}

AccessLog& AccessLog::operator=(AccessLog&& o) noexcept {
  if (this != &o) {
    if (owned_) ::close(fd_);
    fd_ = o.fd_;
    owned_ = o.owned_;
    path_ = std::move(o.path_);
    o.fd_ = -1;
    o.owned_ = false;
  }
  return *this;
}

AccessLog::~AccessLog() {
  if (owned_) ::close(fd_);
}

void AccessLog::write(const AccessRecord& r) const {
  if (fd_ < 0) return;
  std::string line = to_json(r);
  line += '\n';
  const char* p = line.data();
  std::size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(fd_, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // a full disk must not stop the proxy; the error log would be the place to say it
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

}  // namespace portier::observe
