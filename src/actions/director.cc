#include "actions/director.h"

#include <event2/event.h>

#include <memory>

#include "net/connection.h"
#include "net/scope.h"
#include "protocols/director_client.h"
#include "util/log.h"

namespace mw::actions {
namespace {

struct Job {
  Job(IoContext& io) : scope(io.base) {}
  Scope scope;
  std::string outcome;
};

Task<void> send_command(IoContext& io, Job& job, config::DirectorOp op, Endpoint admin,
                        std::string backend, std::string label) {
  ConnectionOptions opts;
  opts.timeout_ms = DirectorRunner::kTimeoutMs;
  opts.max_line = director::Client::kMaxLine;
  opts.max_bytes = 1024 * 1024;
  opts.log_prefix = label;
  Connection conn(io, job.scope, std::move(opts));
  co_await conn.connect(admin);
  director::Client client(conn, job.scope);
  co_await client.handshake();
  director::Reply reply = director::Reply::ok;
  switch (op) {
    case config::DirectorOp::down:
      reply = co_await client.host_down(backend);
      if (reply == director::Reply::ok) reply = co_await client.host_reset_users(backend);
      break;
    case config::DirectorOp::up:
      reply = co_await client.host_up(backend);
      break;
    case config::DirectorOp::flush:
      reply = co_await client.host_flush(backend);
      break;
  }
  if (reply == director::Reply::notfound)
    job.outcome = "NOTFOUND: the director has no backend " + backend;
}

}  // namespace

const char* director_op_name(config::DirectorOp op) {
  switch (op) {
    case config::DirectorOp::down:
      return "down";
    case config::DirectorOp::up:
      return "up";
    case config::DirectorOp::flush:
      return "flush";
  }
  return "?";
}

void DirectorRunner::run(config::DirectorOp op, const Endpoint& admin, const std::string& backend,
                         const std::string& label, std::function<void(const std::string&)> done) {
  auto* job = new Job(io_);
  job->scope.set_deadline(kDeadlineMs);
  ++running_;
  std::string what =
      std::string("director ") + director_op_name(op) + " " + backend + " via " + admin.describe();
  start_detached(
      send_command(io_, *job, op, admin, backend, label),
      [this, job, what, label, done = std::move(done)](std::exception_ptr e) {
        if (e) {
          try {
            std::rethrow_exception(e);
          } catch (const ProbeError& pe) {
            job->outcome = std::string(failure_class_name(pe.cls())) + ": " + pe.what();
          } catch (const std::exception& ex) {
            job->outcome = ex.what();
          }
        }
        if (job->outcome.empty()) {
          log::warning("%s: %s: OK", label.c_str(), what.c_str());
        } else {
          log::error("%s: %s failed: %s", label.c_str(), what.c_str(), job->outcome.c_str());
        }
        if (done) done(job->outcome);
        --running_;
        // The task's frame still refers to the job's scope until it is destroyed
        // after this callback: free the job from the loop, later.
        timeval now{0, 0};
        event_base_once(
            job->scope.base(), -1, EV_TIMEOUT,
            [](evutil_socket_t, short, void* arg) { delete static_cast<Job*>(arg); }, job, &now);
      });
}

}  // namespace mw::actions
