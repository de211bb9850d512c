#pragma once
// The process: worker threads (one io_context each, SO_REUSEPORT acceptors on every listener
// address), signals, graceful shutdown.
#include <string>

namespace portier::server {

// Runs portier on the config file until SIGTERM/SIGINT; returns the process exit code.
int run(const std::string& config_path);

// --check: prints every config error (stderr) or a one-line summary (stdout); returns 0 or 1.
int check(const std::string& config_path);

}  // namespace portier::server
