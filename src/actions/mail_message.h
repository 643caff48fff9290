// Alert mails as RFC 5322 text: the mail-format's parts with $EVENT, $SERVICE, $DATE, $HOST,
// $ACTION and $DESCRIPTION filled in (monit's defaults where the control file sets nothing),
// then headers (Date, Message-ID, MIME, RFC 2047 encoded-words for non-ASCII) and a body that
// keeps every line within 998 bytes (7bit when it can, quoted-printable otherwise). Pure
// functions: the unit tests hold inputs and the exact text they give.
#pragma once

#include <ctime>
#include <string>

#include "config/model.h"

namespace mw::actions::mail {

// The values of the mail-format variables for one event.
struct Variables {
  std::string event;  // failed / succeeded
  std::string service;
  std::string date;         // as shown to people: "2026-11-25 18:34:35"
  std::string host;         // the host mailwarden runs on
  std::string action;       // what the rule does: "alert", "alert, exec"
  std::string description;  // "imap 127.0.0.1:143 failed: connect: ..."
};

// A mail's parts after expansion; `date` and `message_id` are the header values.
struct Parts {
  std::string from;
  std::string to;
  std::string reply_to;  // empty: no Reply-To
  std::string subject;
  std::string body;  // lines end in LF or CRLF
  std::string date;
  std::string message_id;
};

// The defaults (monit's, with mailwarden's name).
extern const char* const kDefaultFrom;
extern const char* const kDefaultSubject;
extern const char* const kDefaultMessage;

[[nodiscard]] std::string expand(const std::string& text, const Variables& v);

// The parts for one recipient: its own mail-format over the global one over the defaults.
[[nodiscard]] Parts compose(const config::MailFormat& global, const config::AlertRecipient& to,
                            const Variables& v, const std::string& date,
                            const std::string& message_id);

// The whole message, CRLF line ends, every line at most 998 bytes.
[[nodiscard]] std::string build(const Parts& p);

// "Wed, 25 Nov 2026 18:34:35 +0100" in local time.
[[nodiscard]] std::string rfc5322_date(time_t t);
// "<1764092075.4242.7.5f0c1a2b@host>": unique per process start, call and host.
[[nodiscard]] std::string new_message_id(const std::string& host);
// The address of "Name <user@domain>" (or the whole value, trimmed).
[[nodiscard]] std::string address_of(const std::string& value);
// One header field, folded (lines of at most 78 bytes where the words allow) and, when it holds
// non-ASCII bytes, written as RFC 2047 encoded-words. CR, LF and other control bytes become
// spaces: nothing a server sent can add a header.
[[nodiscard]] std::string header(const std::string& name, const std::string& value);
// RFC 2045 quoted-printable of a body with CRLF line ends.
[[nodiscard]] std::string quoted_printable(const std::string& crlf_text);

}  // namespace mw::actions::mail
