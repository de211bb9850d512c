#pragma once
// Active health checks of egress exits: a region's "probe" tries each of its exits every
// `interval` — a CONNECT through the exit's chain to `target` (for a direct exit: a connection to
// `target` from the exit's source address), or without a target a TCP connect to the exit's first
// hop — each try bounded by `timeout`. `fall` failures in a row mark the exit down
// (Health::probe_down, which choose_exit honours), `rise` successes in a row bring it back; each
// transition is one stderr line. A direct exit without a target has nothing to reach and is not probed.
// Reverse pools with "health" are checked the same way, per backend: GET <path> must answer a status
// in the expected range ("portier: backend 10.0.0.5:80 (pool api) down: ...").
//
// The prober runs on one executor (one worker's io_context); the run of results it keeps lives in
// the exit's Health, so it survives reloads with the health, and only that executor touches it.
#include <memory>
#include <string>
#include <unordered_map>

#include "portier/net/asio.hpp"

namespace portier::session {

class EgressTable;
class BackendTable;

// ---- the pure part: a run of probe results -> transitions ---------------------------------------

struct ProbeCounts {
  unsigned successes = 0;  // in a row, while down
  unsigned failures = 0;   // in a row, while up
  bool down = false;
};

enum class ProbeTransition { none, went_down, came_up };

// Records one probe result. An exit starts up; `fall` failures in a row take it down, `rise`
// successes in a row while down bring it back (0 counts as 1). Any other result resets the run.
ProbeTransition record_probe(ProbeCounts& counts, bool success, unsigned rise, unsigned fall) noexcept;

// ---- the loops ----------------------------------------------------------------------------------

class Prober {
 public:
  explicit Prober(asio::any_io_executor executor);
  Prober(const Prober&) = delete;
  Prober& operator=(const Prober&) = delete;
  ~Prober();

  // Call on the executor's thread (or before it runs). Probes the exits `table` configures from now
  // on: a loop per probed exit, keyed by the exit's health identity, so a reload that keeps an exit
  // keeps its loop (and its rhythm); loops of exits no longer probed stop, and such an exit that a
  // probe had marked down is up again.
  // Reverse pools with "health" get an HTTP check per backend the same way.
  void update(std::shared_ptr<const EgressTable> egress, std::shared_ptr<const BackendTable> backends = nullptr);
  // Call on the executor's thread. Stops every loop at once (a probe in flight is cancelled);
  // later updates are ignored.
  void stop();

  std::size_t loops() const noexcept { return loops_.size(); }

  struct Loop;

 private:
  void stop_loops();  // ends every loop in loops_ (a probe in flight is cancelled) and forgets them

  asio::any_io_executor executor_;
  std::unordered_map<std::string, std::shared_ptr<Loop>> loops_;
  bool stopped_ = false;
};

}  // namespace portier::session
