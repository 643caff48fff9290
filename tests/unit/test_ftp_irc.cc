// The FTP and IRC clients' parsers: passive replies, listings, IRC messages and names.
#include <CppUTest/TestHarness.h>

#include "protocols/ftp_client.h"
#include "protocols/irc_client.h"

using namespace mw;

TEST_GROUP(FtpParse){};

TEST(FtpParse, PasvReply) {
  std::string host;
  uint16_t port = 0;
  CHECK_TRUE(ftp::parse_pasv("227 Entering Passive Mode (127,0,0,1,97,168).", host, port));
  STRCMP_EQUAL("127.0.0.1", host.c_str());
  LONGS_EQUAL(25000, port);
  CHECK_TRUE(ftp::parse_pasv("227 =10,1,2,3,4,5", host, port));
  LONGS_EQUAL(1029, port);
  CHECK_FALSE(ftp::parse_pasv("227 Entering Passive Mode (127,0,0,1,97)", host, port));
  CHECK_FALSE(ftp::parse_pasv("227 Entering Passive Mode (127,0,0,256,1,1)", host, port));
  CHECK_FALSE(ftp::parse_pasv("227 Entering Passive Mode (1,2,3,4,0,0)", host, port));
  CHECK_FALSE(ftp::parse_pasv("227 nothing", host, port));
}

TEST(FtpParse, EpsvReply) {
  uint16_t port = 0;
  CHECK_TRUE(ftp::parse_epsv("229 Entering Extended Passive Mode (|||24843|)", port));
  LONGS_EQUAL(24843, port);
  CHECK_FALSE(ftp::parse_epsv("229 Entering Extended Passive Mode (|||99999|)", port));
  CHECK_FALSE(ftp::parse_epsv("229 Entering Extended Passive Mode (||24843|)", port));
  CHECK_FALSE(ftp::parse_epsv("229 Entering Extended Passive Mode (|||24843)", port));
  CHECK_FALSE(ftp::parse_epsv("229 (", port));
}

TEST(FtpParse, ListedNames) {
  STRCMP_EQUAL("a.eml", ftp::listed_name("a.eml\r").c_str());
  STRCMP_EQUAL("a.eml", ftp::listed_name("dir/sub/a.eml").c_str());
  STRCMP_EQUAL("", ftp::listed_name(".hidden").c_str());
  STRCMP_EQUAL("", ftp::listed_name("..").c_str());
  STRCMP_EQUAL("", ftp::listed_name("").c_str());
}

TEST_GROUP(IrcParse){};

TEST(IrcParse, PrefixCommandAndTrailing) {
  irc::Message m;
  CHECK_TRUE(irc::parse(":b!~b@127.0.0.1 PRIVMSG #alerts :hello there", m));
  STRCMP_EQUAL("b!~b@127.0.0.1", m.prefix.c_str());
  STRCMP_EQUAL("PRIVMSG", m.command.c_str());
  LONGS_EQUAL(2, m.params.size());
  STRCMP_EQUAL("#alerts", m.param(0).c_str());
  STRCMP_EQUAL("hello there", m.param(1).c_str());
  STRCMP_EQUAL("", m.param(5).c_str());
}

TEST(IrcParse, NumericsPingTagsAndJunk) {
  irc::Message m;
  CHECK_TRUE(irc::parse(":irc.example.test 433 * mwrecv :Nickname already in use", m));
  STRCMP_EQUAL("433", m.command.c_str());
  STRCMP_EQUAL("mwrecv", m.param(1).c_str());
  CHECK_TRUE(irc::parse("ping :token", m));
  STRCMP_EQUAL("PING", m.command.c_str());
  STRCMP_EQUAL("token", m.param(0).c_str());
  CHECK_TRUE(irc::parse("@time=2026 :s 001 me :Welcome", m));
  STRCMP_EQUAL("001", m.command.c_str());
  CHECK_FALSE(irc::parse(":prefixonly", m));
  CHECK_FALSE(irc::parse("", m));
  CHECK_FALSE(irc::parse("   ", m));
}

TEST(IrcParse, NamesFoldCase) {
  CHECK_TRUE(irc::same_name("#Alerts", "#alerts"));
  CHECK_TRUE(irc::same_name("nick{}|^", "NICK[]\\~"));
  CHECK_FALSE(irc::same_name("#alerts", "#alert"));
}
