// The readers of HTTP replies, fed by a server that says the input: the `http` protocol test's
// (mw::http_probe: status line, interim 1xx, header fields, Content-Length, chunked, until the
// close, the body cap) through the real port test, and the client of the Alertmanager posts and
// of the CLI's remote commands (mw::http::fetch). The first byte picks the rule or the request.
#include <cstdio>
#include <cstdlib>

#include "fuzz_support.h"
#include "http/client.h"
#include "net/failure.h"
#include "net/scope.h"

namespace {

const std::vector<std::string> kRules = {
    "protocol http",
    "protocol http request \"/mail/config-v1.1.xml\" status = 200 content = \"clientConfig\"",
    "protocol http request \"/\" status < 400 checksum sha1 "
    "da39a3ee5e6b4b0d3255bfef95601890afd80709",
    "protocol http request \"/.well-known/mta-sts.txt\" content != \"error\"",
};

// Alertmanager's POST (with basic authentication), the CLI's GET and POST.
mw::Task<void> fetch(mw::IoContext& io, int which) {
  mw::Scope scope(io.base);
  scope.set_deadline(5000);
  mw::http::Url url;
  url.host = mwfuzz::tcp_endpoint().host;
  url.port = mwfuzz::tcp_endpoint().port;
  mw::http::Request req;
  if (which == 0) {
    req.method = "POST";
    req.path = "/api/v2/alerts";
    req.headers = {{"Content-Type", "application/json"}};
    req.body = "[{\"labels\":{\"alertname\":\"imap\"}}]";
    req.user = "am";
    req.password = "secret";
  } else if (which == 1) {
    req.path = "/api/v1/status";
  } else {
    req.method = "POST";
    req.path = "/api/v1/services/imap/check";
    req.headers = {{"X-Requested-By", "mailwarden"}};
  }
  try {
    mw::http::Response r = co_await mw::http::fetch(io, scope, url, req, mw::TlsSettings{}, 2000);
    if (r.body.size() > mw::http::kMaxResponseBody) abort();
    if (getenv("MW_FUZZ_SHOW"))
      fprintf(stderr, "fetch: %d, %zu body bytes\n", r.status, r.body.size());
  } catch (const mw::ProbeError& e) {
    if (getenv("MW_FUZZ_SHOW")) fprintf(stderr, "fetch: %s\n", e.what());
    if (e.cls() == mw::FailureClass::none || std::string(e.what()).empty()) abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  size_t pick = data[0] % (kRules.size() + 3);
  if (pick < kRules.size()) return mwfuzz::fuzz_replies(kRules, data, size);
  int which = static_cast<int>(pick - kRules.size());
  mwfuzz::drive({reinterpret_cast<const char*>(data) + 1, size - 1},
                [which](mw::IoContext& io) { return fetch(io, which); });
  return 0;
}
