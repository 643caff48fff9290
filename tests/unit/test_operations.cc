// Running as a service: who the daemon runs as (privileges.h) and where its log lines go when
// syslog is absent or the log file was rotated away (log.h).
#include "support.h"  // before CppUTest: its new macros break STL headers

#include <CppUTest/TestHarness.h>

#include <cstdio>
#include <string>

#include "daemon/privileges.h"
#include "util/files.h"
#include "util/log.h"

namespace {

using Kind = mw::daemon::PrivilegePlan::Kind;

std::shared_ptr<const mw::config::Config> control(const std::string& extra) {
  std::string errors;
  auto c = mwtest::parse_text("set daemon 30\n" + extra +
                                  "check host h with address 127.0.0.1\n"
                                  "  if failed port 143 protocol imap then alert\n",
                              &errors);
  if (!c) FAIL(errors.c_str());
  return c;
}

}  // namespace

TEST_GROUP(Privileges){};

TEST(Privileges, RootWithNothingThatNeedsItRefuses) {
  auto plan = mw::daemon::plan_privileges(*control(""), 0, false);
  CHECK(plan.kind == Kind::refuse);
  STRCMP_EQUAL(
      "refusing to run as root: nothing in the control file needs it. Add 'set user "
      "mailwarden' (any unprivileged user) to drop to it after start-up, start mailwarden as "
      "that user, or set MAILWARDEN_ALLOW_ROOT=1 to run as root anyway",
      plan.explanation.c_str());
  CHECK(mw::daemon::plan_privileges(*control(""), 0, true).kind == Kind::keep_root);
}

TEST(Privileges, SetUserDropsAndSaysSo) {
  auto plan = mw::daemon::plan_privileges(*control("set user nobody\n"), 0, false);
  CHECK(plan.kind == Kind::drop);
  STRCMP_EQUAL("running as nobody (uid 65534, gid 65534) as 'set user' asks",
               plan.explanation.c_str());
  // Already that user (systemd's User=): nothing to do, nothing to say.
  plan = mw::daemon::plan_privileges(*control("set user nobody\n"), 65534, false);
  CHECK(plan.kind == Kind::as_is);
  STRCMP_EQUAL("", plan.explanation.c_str());
  plan = mw::daemon::plan_privileges(*control("set user nobody\n"), 1000, false);
  CHECK(plan.kind == Kind::refuse);
  STRCMP_CONTAINS("asks for uid 65534, but mailwarden runs as uid 1000 and cannot change users",
                  plan.explanation.c_str());
}

TEST(Privileges, ExecAsAnotherUserNeedsRoot) {
  std::string errors;
  auto c = mwtest::parse_text(
      "check host h with address 127.0.0.1\n"
      "  if failed port 143 protocol imap then exec \"/bin/true\" as uid 0\n",
      &errors);
  CHECK_TEXT(c, errors.c_str());
  auto reasons = mw::daemon::root_reasons(*c);
  LONGS_EQUAL(1, reasons.size());
  STRCMP_CONTAINS(
      ":2:3: exec \"/bin/true\" as uid 0 (running a program as another user needs root)",
      reasons[0].c_str());
  CHECK(mw::daemon::needs_root(*c));
  auto plan = mw::daemon::plan_privileges(*c, 0, false);
  CHECK(plan.kind == Kind::keep_root);
  STRCMP_CONTAINS("running as root, which\n  ", plan.explanation.c_str());
}

TEST(Privileges, SetUserAndExecAsAnotherUserConflict) {
  std::string errors;
  auto c = mwtest::parse_text(
      "set user nobody\n"
      "check host h with address 127.0.0.1\n"
      "  if failed port 143 protocol imap then exec \"/bin/true\" as uid 0\n"
      "  if failed port 110 protocol pop then exec \"/bin/true\" as uid nobody\n",
      &errors);
  CHECK_TEXT(c, errors.c_str());
  LONGS_EQUAL(1, mw::daemon::root_reasons(*c).size());  // as uid nobody is the user itself
  auto plan = mw::daemon::plan_privileges(*c, 0, false);
  CHECK(plan.kind == Kind::refuse);
  STRCMP_CONTAINS("'set user nobody' (", plan.explanation.c_str());
  STRCMP_CONTAINS(") cannot be honoured: the control file needs root for\n  ",
                  plan.explanation.c_str());
}

TEST_GROUP(Logs){void teardown() override{mw::log::to_stderr();
}
}
;

TEST(Logs, SyslogWithoutASocketFallsBackToStderr) {
  std::string error;
  CHECK_FALSE(mw::log::to_syslog("daemon", error, mwtest::tmpdir() + "/no-such-log-socket"));
  STRCMP_CONTAINS("no syslog daemon listens on ", error.c_str());
  STRCMP_CONTAINS("/no-such-log-socket (No such file or directory)", error.c_str());
}

TEST(Logs, ReopenWritesToTheFileByItsName) {
  std::string path = mwtest::tmpdir() + "/reopen.log", error;
  CHECK_TEXT(mw::log::to_file(path, error), error.c_str());
  mw::log::info("before rotation");
  CHECK(rename(path.c_str(), (path + ".1").c_str()) == 0);
  mw::log::info("still the old file");
  CHECK_TEXT(mw::log::reopen(error), error.c_str());
  mw::log::info("after rotation");
  mw::log::to_stderr();
  auto old_text = mw::files::read(path + ".1", error);
  auto new_text = mw::files::read(path, error);
  CHECK(old_text && new_text);
  STRCMP_CONTAINS("before rotation", old_text->c_str());
  STRCMP_CONTAINS("still the old file", old_text->c_str());
  CHECK(old_text->find("after rotation") == std::string::npos);
  STRCMP_CONTAINS("after rotation", new_text->c_str());
  CHECK(new_text->find("before rotation") == std::string::npos);
}
