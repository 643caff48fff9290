// CppUTest runner for mailwarden's unit tests.
#include <CppUTest/CommandLineTestRunner.h>
#include <CppUTest/TestRegistry.h>
#include <signal.h>

int main(int argc, char** argv) {
  // libevent, OpenSSL and the C++ runtime keep process-wide allocations that CppUTest's per-test
  // leak detector would report; leaks are checked with valgrind/ASan instead.
  MemoryLeakWarningPlugin::turnOffNewDeleteOverloads();
  TestRegistry::getCurrentRegistry()->resetPlugins();
  signal(SIGPIPE, SIG_IGN);
  return CommandLineTestRunner::RunAllTests(argc, argv);
}
